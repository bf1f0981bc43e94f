#include "services/gateway/call_log_line.h"

#include <charconv>
#include <string_view>

#include "absl/time/time.h"

namespace maas::gateway {
namespace {

// True when `s` goes into a JSON string unchanged: printable ASCII other than '"' and '\'.
bool Plain(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') return false;
  }
  return true;
}

void AppendQuoted(std::string* out, std::string_view s) {
  out->push_back('"');
  out->append(s.data(), s.size());
  out->push_back('"');
}

}  // namespace

void CallLogLineFormatter::Append(const server::CallLogEntry& entry, std::string* out) {
  // Whole nanoseconds since 1970 (what absl::Now() gives) take the fast path.
  const absl::Duration since_epoch = entry.ts - absl::UnixEpoch();
  const bool fast_time = since_epoch >= absl::ZeroDuration() &&
                         since_epoch < absl::Hours(24 * 365 * 200) &&
                         entry.ts == absl::FromUnixNanos(absl::ToUnixNanos(entry.ts));
  if (!fast_time || !Plain(entry.server) || !Plain(entry.method) || !Plain(entry.code) ||
      !Plain(entry.peer) || !Plain(entry.message) || !Plain(entry.model) ||
      !Plain(entry.request_id)) {
    out->append(server::FormatCallLogLine(entry));
    out->push_back('\n');
    return;
  }
  const int64_t ns = absl::ToUnixNanos(entry.ts);
  const int64_t second = ns / 1000000000;
  int nanos = static_cast<int>(ns % 1000000000);
  if (second != second_) {
    second_ = second;
    second_text_ =
        absl::FormatTime("%Y-%m-%d%ET%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
  }
  out->append("{\"ts\":\"");
  out->append(second_text_);
  if (nanos != 0) {  // %E*S: the fraction without trailing zeros, no '.' when it is zero
    char digits[10];
    digits[0] = '.';
    for (int i = 9; i >= 1; --i) {
      digits[i] = static_cast<char>('0' + nanos % 10);
      nanos /= 10;
    }
    size_t n = 10;
    while (digits[n - 1] == '0') --n;
    out->append(digits, n);
  }
  out->append("+00:00\",\"server\":");
  AppendQuoted(out, entry.server);
  out->append(",\"method\":");
  AppendQuoted(out, entry.method);
  out->append(",\"code\":");
  AppendQuoted(out, entry.code);
  out->append(",\"duration_ms\":");
  char buf[64];
  const std::to_chars_result ms =
      std::to_chars(buf, buf + sizeof(buf), absl::ToDoubleMilliseconds(entry.duration),
                    std::chars_format::fixed, 3);
  out->append(buf, ms.ptr);
  out->append(",\"peer\":");
  AppendQuoted(out, entry.peer);
  if (!entry.message.empty()) {
    out->append(",\"message\":");
    AppendQuoted(out, entry.message);
  }
  if (!entry.model.empty()) {
    out->append(",\"model\":");
    AppendQuoted(out, entry.model);
  }
  if (entry.model_version > 0) {
    out->append(",\"model_version\":");
    const std::to_chars_result v = std::to_chars(buf, buf + sizeof(buf), entry.model_version);
    out->append(buf, v.ptr);
  }
  if (!entry.request_id.empty()) {
    out->append(",\"request_id\":");
    AppendQuoted(out, entry.request_id);
  }
  out->append("}\n");
}

}  // namespace maas::gateway

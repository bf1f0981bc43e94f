#include "services/gateway/call_log.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/server/server.h"

namespace maas::gateway {

CallLog::CallLog(std::string server, std::ostream* out, absl::Duration flush_interval)
    : server_(std::move(server)),
      id_prefix_(absl::StrFormat("%x%x", absl::ToUnixNanos(absl::Now()), getpid())),
      writer_(server_, out, flush_interval) {}

CallLog::Call CallLog::Begin(
    const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata) {
  Call call;
  call.start = absl::Now();
  auto it = client_metadata.find(server::kRequestIdKey);
  if (it != client_metadata.end()) {
    // The client's id, bounded and printable (it goes into every log line).
    for (char c : absl::string_view(it->second.data(), std::min<size_t>(it->second.size(), 128))) {
      if (c > 0x20 && c < 0x7f) call.request_id.push_back(c);
    }
  }
  if (call.request_id.empty()) {
    call.request_id =
        absl::StrCat(id_prefix_, "-", next_id_.fetch_add(1, std::memory_order_relaxed));
    call.generated_id = true;
  }
  return call;
}

void CallLog::End(const Call& call, absl::string_view method, const grpc::Status& status,
                  absl::string_view peer, absl::string_view model, int64_t model_version) {
  const absl::Time end = absl::Now();
  const std::string& message = status.error_message();
  server::CallLogEntry entry;
  entry.ts = end;
  entry.server = server_;
  entry.method = std::string_view(method.data(), method.size());
  entry.code = server::StatusCodeName(status.error_code());
  entry.duration = end - call.start;
  entry.peer = std::string_view(peer.data(), peer.size());
  entry.message = std::string_view(message.data(), std::min<size_t>(message.size(), 512));
  entry.model = std::string_view(model.data(), model.size());
  entry.model_version = model_version;
  entry.request_id = call.request_id;
  std::string line = server::FormatCallLogLine(entry);
  line.push_back('\n');
  WriteLines(line);
}

void CallLog::WriteLines(absl::string_view lines) { writer_.Write(lines); }

void ModelFromTrailers(const std::multimap<grpc::string_ref, grpc::string_ref>& trailers,
                       std::string* model, int64_t* model_version) {
  auto name = trailers.find("maas-model-name");
  if (name != trailers.end()) {
    model->assign(name->second.data(), std::min<size_t>(name->second.size(), 128));
  }
  auto version = trailers.find("maas-model-version");
  if (version != trailers.end() &&
      !absl::SimpleAtoi(absl::string_view(version->second.data(), version->second.size()),
                        model_version)) {
    *model_version = 0;
  }
}

}  // namespace maas::gateway

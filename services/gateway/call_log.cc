#include "services/gateway/call_log.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/server/server.h"

namespace maas::gateway {

CallLog::CallLog(std::string server, std::ostream* out, absl::Duration flush_interval)
    : server_(std::move(server)),
      out_(out),
      flush_interval_(flush_interval),
      id_prefix_(absl::StrFormat("%x%x", absl::ToUnixNanos(absl::Now()), getpid())) {
  if (flush_interval_ > absl::ZeroDuration()) writer_ = std::thread([this] { WriterLoop(); });
}

CallLog::~CallLog() {
  if (!writer_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();
}

void CallLog::WriterLoop() {
  std::string lines;
  for (;;) {
    uint64_t dropped = 0;
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || buffer_.size() >= kEagerFlushBytes;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), flush_interval_);
      lines.swap(buffer_);  // the caller's next lines go into the old buffer's capacity
      buffer_.clear();
      dropped = dropped_ - dropped_reported_;
      dropped_reported_ = dropped_;
      stop = stop_;
    }
    if (!lines.empty()) {
      out_->write(lines.data(), static_cast<std::streamsize>(lines.size()));
      out_->flush();
      lines.clear();
    }
    if (dropped > 0) {
      std::cerr << server_ << ": " << dropped
                << " call log lines dropped: the log's output could not keep up\n"
                << std::flush;
    }
    if (stop) {
      absl::MutexLock lock(&mu_);
      if (buffer_.empty()) return;  // lines logged while this round wrote go out in one more
    }
  }
}

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

void CallLog::WriteLines(absl::string_view lines) {
  absl::MutexLock lock(&mu_);
  if (!writer_.joinable()) {
    out_->write(lines.data(), static_cast<std::streamsize>(lines.size()));
    out_->flush();
    return;
  }
  if (buffer_.size() + lines.size() > kMaxBufferedBytes) {
    dropped_ += static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
    return;
  }
  buffer_.append(lines.data(), lines.size());
}

uint64_t CallLog::dropped_lines() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

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

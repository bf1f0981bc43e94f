#include "common/server/line_writer.h"

#include <algorithm>
#include <iostream>
#include <utility>

namespace maas::server {

LineWriter::LineWriter(std::string name, std::ostream* out, absl::Duration flush_interval)
    : name_(std::move(name)), out_(out), flush_interval_(flush_interval) {
  if (flush_interval_ > absl::ZeroDuration()) writer_ = std::thread([this] { WriterLoop(); });
}

LineWriter::~LineWriter() {
  if (!writer_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();
}

void LineWriter::WriterLoop() {
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
      lines.swap(buffer_);  // the callers' next lines go into the old buffer's capacity
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
      std::cerr << name_ << ": " << dropped
                << " call log lines dropped: the log's output could not keep up\n"
                << std::flush;
    }
    if (stop) {
      absl::MutexLock lock(&mu_);
      if (buffer_.empty()) return;  // lines written while this round wrote go out in one more
    }
  }
}

void LineWriter::Write(absl::string_view lines) {
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

uint64_t LineWriter::dropped_lines() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace maas::server

#include "common/server/line_writer.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace maas::server {

LineWriter::LineWriter(std::string name, std::ostream* out, absl::Duration flush_interval)
    : name_(std::move(name)),
      out_(out),
      fd_(out == &std::cerr ? STDERR_FILENO : -1),
      flush_interval_(flush_interval) {
  if (flush_interval_ > absl::ZeroDuration()) writer_ = std::thread([this] { WriterLoop(); });
}

LineWriter::~LineWriter() {
  if (!writer_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    give_up_at_ = absl::Now() + kShutdownWait;
  }
  writer_.join();
}

bool LineWriter::GaveUp() const {
  absl::MutexLock lock(&mu_);
  return absl::Now() >= give_up_at_;
}

uint64_t LineWriter::WriteStream(absl::string_view lines) {
  out_->write(lines.data(), static_cast<std::streamsize>(lines.size()));
  out_->flush();
  if (out_->good()) return 0;
  // A failed write (a full disk) sets the stream's error state, and every later write would then
  // do nothing: clear it, so the log resumes once the output takes lines again.
  out_->clear();
  return static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
}

uint64_t LineWriter::WriteOut(absl::string_view lines) {
  if (fd_ < 0) return WriteStream(lines);
  size_t at = 0;
  while (at < lines.size()) {
    pollfd ready{fd_, POLLOUT, 0};
    const int polled = poll(&ready, 1, /*timeout_ms=*/100);
    if (polled <= 0) {
      if (polled < 0 && errno != EINTR) break;
      if (GaveUp()) break;
      continue;
    }
    // Whole lines where they fit in a chunk.
    size_t n = std::min(kChunkBytes, lines.size() - at);
    if (at + n < lines.size()) {
      const size_t line_end = lines.rfind('\n', at + n - 1);
      if (line_end != absl::string_view::npos && line_end >= at) n = line_end + 1 - at;
    }
    const ssize_t written = write(fd_, lines.data() + at, n);
    if (written < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      break;  // a closed or broken output: the rest cannot go anywhere
    }
    at += static_cast<size_t>(written);
  }
  return static_cast<uint64_t>(std::count(lines.begin() + at, lines.end(), '\n'));
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
      if (const uint64_t lost = WriteOut(lines); lost > 0) {
        absl::MutexLock lock(&mu_);
        dropped_ += lost;
      }
      lines.clear();
    }
    if (dropped > 0 && !GaveUp()) {
      const std::string note = absl::StrCat(name_, ": ", dropped,
                                            " call log lines dropped: the log's output could not "
                                            "keep up, or refused them (a full disk?)\n");
      if (fd_ >= 0) {
        // stderr is the output: in order, and bounded at shutdown. A note that does not go out
        // is not a call line: not counted (else a closed stderr would get one note per round).
        WriteOut(note);
      } else {
        std::cerr << note << std::flush;
      }
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
    const uint64_t lost = WriteStream(lines);
    dropped_ += lost;
    // Said once when lines start being lost, and once, with the count, when they go out again.
    if (lost > 0 && !failing_) {
      failing_ = true;
      std::cerr << name_ << ": the call log's output refuses lines (a full disk?); they are "
                << "dropped and counted until it takes them again\n"
                << std::flush;
    } else if (lost == 0 && failing_) {
      failing_ = false;
      std::cerr << name_ << ": the call log's output takes lines again; " << dropped_
                << " call log lines dropped in all\n"
                << std::flush;
    }
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

// LineWriter: where a server's per-call log lines go, either written at once by the thread that
// logs, or buffered and written by the writer's own thread.
//
//   LineWriter writer("maas-discriminative", &std::cerr, absl::Milliseconds(20));
//   writer.Write("{...}\n");   // returns at once; on the output within ~20 ms
//
// With a flush interval, the lines reach the output at most that long after they were written (at
// once when kEagerFlushBytes are waiting), in order, in few large writes: the threads that serve
// calls never wait for the output, so a slow disk or a stalled reader of stderr cannot stall the
// calls, and the output takes one write per batch of lines instead of one per call. Up to
// kMaxBufferedBytes wait for the writer; beyond that, lines are dropped and counted
// (dropped_lines(), and a note on stderr once the writer catches up), never blocking the caller.
// The destructor writes every line still buffered, waiting at most kShutdownWait for an output
// that takes nothing (a stalled pipe): the lines it then still holds are dropped, so that a server
// with a stalled stderr still exits. That wait is bounded for std::cerr, which the writer's thread
// writes through its file descriptor (2) with poll, in chunks of whole lines of at most
// kChunkBytes; other streams are written as they are. Without an interval, Write writes and
// flushes before it returns. Thread-safe.
#ifndef MAAS_COMMON_SERVER_LINE_WRITER_H_
#define MAAS_COMMON_SERVER_LINE_WRITER_H_

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace maas::server {

class LineWriter {
 public:
  // `name` starts the dropped-lines note; `out` (not owned, must outlive the writer) gets the
  // lines. flush_interval > 0: written by the writer's own thread; 0: by the caller, at once.
  LineWriter(std::string name, std::ostream* out,
             absl::Duration flush_interval = absl::ZeroDuration());
  // Writes every line still buffered.
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Lines buffered beyond this wait for the writer; more are dropped.
  static constexpr size_t kMaxBufferedBytes = 8 << 20;
  // The writer writes at once when this much is buffered, without waiting for the interval.
  static constexpr size_t kEagerFlushBytes = 64 << 10;
  // How long the destructor waits for a stalled std::cerr to take the last lines.
  static constexpr absl::Duration kShutdownWait = absl::Seconds(2);
  // The largest write to std::cerr's descriptor: what a pipe that polls writable takes at once
  // (PIPE_BUF), so that no write blocks.
  static constexpr size_t kChunkBytes = 4096;

  // Writes finished lines (each ending in '\n') and flushes, or hands them to the writer's thread.
  void Write(absl::string_view lines);

  // Lines dropped: because kMaxBufferedBytes were waiting for the writer, because std::cerr did
  // not take them (closed, or still stalled when the destructor's wait was over), or because the
  // output stream refused them (a full disk; later lines go out again once it takes them).
  uint64_t dropped_lines() const;

 private:
  void WriterLoop();
  // Writes `lines` to the output (the writer's thread); to a descriptor, gives up when it is closed
  // or once the destructor's wait is over. Returns the number of lines not written.
  uint64_t WriteOut(absl::string_view lines);
  // Writes `lines` to out_ (not std::cerr's descriptor) and flushes; returns the number of lines
  // lost when the stream refused them (its error state is cleared for the next write).
  uint64_t WriteStream(absl::string_view lines);
  // Whether the destructor's wait for the output is over.
  bool GaveUp() const;

  const std::string name_;
  std::ostream* const out_;
  const int fd_;  // std::cerr's descriptor when out_ is std::cerr, else -1
  const absl::Duration flush_interval_;
  mutable absl::Mutex mu_;  // serializes the writes to out_ (synchronous) / guards the buffer
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_reported_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool failing_ ABSL_GUARDED_BY(mu_) = false;  // synchronous: the last write was refused
  absl::Time give_up_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::thread writer_;  // only with a flush interval
};

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_LINE_WRITER_H_

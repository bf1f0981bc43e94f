// StreamWatchdog: ends streams that wait on a silent client for too long.
//
// A stream holds an admission slot (--max_concurrent_calls) for as long as it is open, so a
// client that opens streams and then sends nothing could hold every slot. Each stream the client
// sends on starts its reads of the client's next message through its Watch (the clock runs while
// the read is outstanding) and tells it when a read completed; a thread ends the calls that waited
// longer than the idle timeout (--stream_idle_timeout_seconds) with the stream's own status (its
// `on_idle`), so the client reads why. Time the server spends working (fitting) never counts.
// Writes are not watched: HTTP/2 flow control lets a reader buffer several messages, so one write
// can wait through many of a steady slow reader's reads (a Sample consumer training on each
// batch); flow control bounds what such a stream holds. Thread-safe.
#ifndef MAAS_COMMON_ADAPTER_STREAM_WATCHDOG_H_
#define MAAS_COMMON_ADAPTER_STREAM_WATCHDOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace maas::adapter {

class StreamWatchdog {
 public:
  // One stream's idle clock.
  class Watch {
   public:
    // Starts a read of the client's next message: runs `start_read` (the reactor's StartRead,
    // which never runs the read's completion on this thread) with the clock started, under the
    // watch's lock, so the watchdog never ends the call between the two.
    template <class StartRead>
    void Read(StartRead&& start_read) {
      absl::MutexLock lock(&mu_);
      since_ns_ = absl::GetCurrentTimeNanos();
      std::forward<StartRead>(start_read)();
    }
    // A read completed: the clock stops. False when the watchdog already ended the call (then the
    // reactor must not end it again: it only lets go of what it holds).
    bool Progress() {
      absl::MutexLock lock(&mu_);
      since_ns_ = 0;
      return !timed_out_;
    }

   private:
    friend class StreamWatchdog;
    explicit Watch(std::function<void()> on_idle) : on_idle_(std::move(on_idle)) {}
    // Ends the call with its on_idle when a read has been outstanding for more than `limit_ns`.
    bool EndIfIdle(int64_t now_ns, int64_t limit_ns);

    absl::Mutex mu_;
    int64_t since_ns_ ABSL_GUARDED_BY(mu_) = 0;  // 0: no read outstanding
    bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
    bool detached_ ABSL_GUARDED_BY(mu_) = false;  // unregistered: its stream may be gone
    const std::function<void()> on_idle_;
  };

  // idle_timeout <= 0: off (Register returns null, no thread).
  explicit StreamWatchdog(absl::Duration idle_timeout);
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Watches a stream until Unregister; null when off. `on_idle` ends the call (its Finish, with
  // the status IdleStatus says); it runs on the watchdog's thread while a read is outstanding and
  // none of the stream's read completions runs, at most once, and must not block.
  std::shared_ptr<Watch> Register(std::function<void()> on_idle);
  // Stops watching (call before the stream goes, e.g. in OnDone; on_idle never runs after it
  // returns: it waits for one that is running). Null: no-op.
  void Unregister(const std::shared_ptr<Watch>& watch);

  absl::Duration idle_timeout() const { return idle_timeout_; }
  // Calls ended for idling so far.
  int64_t cancelled() const { return cancelled_.load(); }

 private:
  void Loop();

  const absl::Duration idle_timeout_;
  absl::Mutex mu_;
  std::vector<std::shared_ptr<Watch>> watches_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<int64_t> cancelled_{0};
  std::thread thread_;
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_STREAM_WATCHDOG_H_

// StreamWatchdog: ends streams that wait on a silent client for too long.
//
// A stream holds an admission slot (--max_concurrent_calls) for as long as it is open, so a
// client that opens streams and then sends nothing could hold every slot. Each stream the client
// sends on tells its Watch when it starts waiting for the client's next message (a read
// outstanding) and when that wait ends; a thread cancels the calls that waited longer than the
// idle timeout (--stream_idle_timeout_seconds). Time the server spends working (fitting) never
// counts. Writes are not watched: HTTP/2 flow control lets a reader buffer several messages, so
// one write can wait through many of a steady slow reader's reads (a Sample consumer training on
// each batch); flow control bounds what such a stream holds. Thread-safe.
#ifndef MAAS_COMMON_ADAPTER_STREAM_WATCHDOG_H_
#define MAAS_COMMON_ADAPTER_STREAM_WATCHDOG_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace maas::adapter {

class StreamWatchdog {
 public:
  // One stream's idle clock.
  class Watch {
   public:
    // A read is outstanding: the clock runs.
    void WaitingOnClient() { since_ns_.store(absl::GetCurrentTimeNanos()); }
    // It completed: the clock stops.
    void Progress() { since_ns_.store(0); }
    // Whether the watchdog cancelled the call for idling.
    bool timed_out() const { return timed_out_.load(); }

   private:
    friend class StreamWatchdog;
    explicit Watch(grpc::ServerContextBase* context) : context_(context) {}
    grpc::ServerContextBase* const context_;
    std::atomic<int64_t> since_ns_{0};  // 0: not waiting on the client
    std::atomic<bool> timed_out_{false};
  };

  // idle_timeout <= 0: off (Register returns null, no thread).
  explicit StreamWatchdog(absl::Duration idle_timeout);
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  // Watches the call of `context` until Unregister; null when off.
  std::shared_ptr<Watch> Register(grpc::ServerContextBase* context);
  // Stops watching (call before the call's context goes, e.g. in OnDone). Null: no-op.
  void Unregister(const std::shared_ptr<Watch>& watch);

  absl::Duration idle_timeout() const { return idle_timeout_; }
  // Calls cancelled for idling so far.
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

// Periodic health of the gateway itself: SERVING only when every route has a serving backend. The
// checks run on gRPC's asynchronous API, on a completion queue the monitor's thread drains during
// each round (no gRPC callback thread).
//
//   HealthMonitor monitor(backends.get(), {}, [&](bool serving, const auto& results) {
//     server->SetServing("", serving);
//   });
//   monitor.Start();
//   ...
//   monitor.Stop();  // before shutting the server down
#ifndef MAAS_SERVICES_GATEWAY_HEALTH_MONITOR_H_
#define MAAS_SERVICES_GATEWAY_HEALTH_MONITOR_H_

#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/gateway/backends.h"

namespace maas::gateway {

// True when every result is SERVING (and there is at least one).
bool AllServing(const std::vector<HealthResult>& results);

class HealthMonitor {
 public:
  struct Options {
    // Time between the end of one round of checks and the start of the next, > 0.
    absl::Duration interval = absl::Seconds(5);
    // Deadline of each health check, > 0.
    absl::Duration timeout = absl::Seconds(1);
    // Time between rounds while some route is not serving, > 0 (<= interval makes sense): the
    // monitor then also resets the reconnect backoff of the failing routes, so a restarted backend
    // is routed to again within about this time.
    absl::Duration unhealthy_interval = absl::Milliseconds(250);
  };
  // Called after every round from the monitor's own thread (it may block briefly).
  using Report = std::function<void(bool serving, const std::vector<HealthResult>& results)>;

  // REQUIRES: `backends` outlives the monitor.
  HealthMonitor(const Backends* backends, Options options, Report report);
  ~HealthMonitor();  // Stop()

  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  // Reports not serving at once, then starts the rounds (the first one immediately) on a thread.
  // INVALID_ARGUMENT when an interval or the timeout is not positive. REQUIRES: called at most
  // once.
  absl::Status Start();

  // Stops the rounds and waits for the thread (at most one check timeout). Idempotent.
  void Stop();

 private:
  void Run();

  const Backends* const backends_;
  const Options options_;
  const Report report_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_HEALTH_MONITOR_H_

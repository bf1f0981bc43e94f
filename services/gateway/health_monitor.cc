#include "services/gateway/health_monitor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/gateway/completion.h"

namespace maas::gateway {

bool AllServing(const std::vector<HealthResult>& results) {
  if (results.empty()) return false;
  for (const HealthResult& r : results) {
    if (r.health != maas::gateway::v1::SERVING) return false;
  }
  return true;
}

HealthMonitor::HealthMonitor(const Backends* backends, Options options, Report report)
    : backends_(backends), options_(options), report_(std::move(report)) {}

HealthMonitor::~HealthMonitor() { Stop(); }

absl::Status HealthMonitor::Start() {
  if (options_.interval <= absl::ZeroDuration() || options_.timeout <= absl::ZeroDuration() ||
      options_.unhealthy_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "health monitor interval, unhealthy interval and timeout must be positive, got ",
        absl::FormatDuration(options_.interval), ", ",
        absl::FormatDuration(options_.unhealthy_interval), " and ",
        absl::FormatDuration(options_.timeout)));
  }
  report_(false, {});
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void HealthMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void HealthMonitor::Run() {
  // The checks run on gRPC's asynchronous API on a queue this thread drains only while a round is
  // in flight, so between rounds no thread of the monitor takes part in gRPC's polling.
  grpc::CompletionQueue cq;
  while (true) {
    std::vector<HealthResult> results;
    bool round_done = false;
    backends_->CheckAllHealth(options_.timeout, &cq, [&](std::vector<HealthResult> r) {
      results = std::move(r);
      round_done = true;
    });
    void* tag = nullptr;
    bool ok = false;
    // Bounded by the checks' deadline.
    while (!round_done && cq.Next(&tag, &ok)) static_cast<CompletionHandler*>(tag)->OnComplete(ok);
    bool stop;
    {
      absl::MutexLock lock(&mu_);
      stop = stop_;
    }
    if (stop) break;  // do not overwrite what shutdown reports
    const bool serving = AllServing(results);
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].health != maas::gateway::v1::SERVING) backends_->ResetConnectBackoff(i);
    }
    report_(serving, results);
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_),
                             serving ? options_.interval : options_.unhealthy_interval)) {
      break;
    }
  }
  cq.Shutdown();
  DrainCompletions(&cq);  // empty: every round ended with all of its checks
}

}  // namespace maas::gateway

#include "common/adapter/stream_watchdog.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace maas::adapter {

StreamWatchdog::StreamWatchdog(absl::Duration idle_timeout) : idle_timeout_(idle_timeout) {
  if (idle_timeout_ > absl::ZeroDuration()) thread_ = std::thread([this] { Loop(); });
}

StreamWatchdog::~StreamWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool StreamWatchdog::Watch::EndIfIdle(int64_t now_ns, int64_t limit_ns) {
  absl::MutexLock lock(&mu_);
  if (detached_ || since_ns_ == 0 || now_ns - since_ns_ <= limit_ns || timed_out_) return false;
  timed_out_ = true;
  on_idle_();  // a read is outstanding and its completion waits for this lock
  return true;
}

std::shared_ptr<StreamWatchdog::Watch> StreamWatchdog::Register(std::function<void()> on_idle) {
  if (idle_timeout_ <= absl::ZeroDuration()) return nullptr;
  std::shared_ptr<Watch> watch(new Watch(std::move(on_idle)));
  absl::MutexLock lock(&mu_);
  watches_.push_back(watch);
  return watch;
}

void StreamWatchdog::Unregister(const std::shared_ptr<Watch>& watch) {
  if (watch == nullptr) return;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(watches_.begin(), watches_.end(), watch);
    if (it != watches_.end()) {
      *it = std::move(watches_.back());
      watches_.pop_back();
    }
  }
  absl::MutexLock lock(&watch->mu_);  // after an on_idle in progress: the stream stays valid there
  watch->detached_ = true;
}

void StreamWatchdog::Loop() {
  // Checked a few times per timeout (at most every second), so a stream ends within about
  // 1.25 timeouts of its last progress.
  const absl::Duration period = std::min(absl::Seconds(1), idle_timeout_ / 4);
  const int64_t limit = absl::ToInt64Nanoseconds(idle_timeout_);
  std::vector<std::shared_ptr<Watch>> watches;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), period)) return;
      watches = watches_;
    }
    // Ended outside mu_ (a Finish may run gRPC work that registers new streams); a watch
    // unregistered meanwhile is detached and skipped.
    const int64_t now = absl::GetCurrentTimeNanos();
    for (const std::shared_ptr<Watch>& watch : watches) {
      if (watch->EndIfIdle(now, limit)) cancelled_.fetch_add(1);
    }
    watches.clear();
  }
}

}  // namespace maas::adapter

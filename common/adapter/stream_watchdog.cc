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

std::shared_ptr<StreamWatchdog::Watch> StreamWatchdog::Register(grpc::ServerContextBase* context) {
  if (idle_timeout_ <= absl::ZeroDuration()) return nullptr;
  std::shared_ptr<Watch> watch(new Watch(context));
  absl::MutexLock lock(&mu_);
  watches_.push_back(watch);
  return watch;
}

void StreamWatchdog::Unregister(const std::shared_ptr<Watch>& watch) {
  if (watch == nullptr) return;
  absl::MutexLock lock(&mu_);  // not while Loop cancels its call: the context stays valid there
  auto it = std::find(watches_.begin(), watches_.end(), watch);
  if (it != watches_.end()) {
    *it = std::move(watches_.back());
    watches_.pop_back();
  }
}

void StreamWatchdog::Loop() {
  // Checked a few times per timeout (at most every second), so a stream ends within about
  // 1.25 timeouts of its last progress.
  const absl::Duration period = std::min(absl::Seconds(1), idle_timeout_ / 4);
  absl::MutexLock lock(&mu_);
  for (;;) {
    auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), period)) return;
    const int64_t now = absl::GetCurrentTimeNanos();
    const int64_t limit = absl::ToInt64Nanoseconds(idle_timeout_);
    for (const std::shared_ptr<Watch>& watch : watches_) {
      const int64_t since = watch->since_ns_.load();
      if (since == 0 || now - since <= limit || watch->timed_out_.load()) continue;
      watch->timed_out_.store(true);
      cancelled_.fetch_add(1);
      watch->context_->TryCancel();  // the read or write fails; the reactor ends the call
    }
  }
}

}  // namespace maas::adapter

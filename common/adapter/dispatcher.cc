#include "common/adapter/dispatcher.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"

namespace maas::adapter {

struct Dispatcher::Counter {
  std::atomic<int64_t> in_flight{0};
};

Dispatcher::Dispatcher(exec::WorkerPool* pool, DispatcherOptions options)
    : pool_(pool), options_(options), counter_(std::make_shared<Counter>()) {}

int64_t Dispatcher::retry_after_ms() const {
  return absl::ToInt64Milliseconds(options_.retry_after);
}

int64_t Dispatcher::in_flight() const { return counter_->in_flight.load(); }

absl::StatusOr<Dispatcher::Ticket> Dispatcher::Admit() {
  const int64_t before = counter_->in_flight.fetch_add(1);
  auto refuse = [&](const std::string& why) {
    counter_->in_flight.fetch_sub(1);
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", why, "; retry in ", retry_after_ms(), " ms (",
                     kRetryAfterMetadataKey, " trailer) or call another replica"));
  };
  if (options_.max_concurrent_calls > 0 && before >= options_.max_concurrent_calls) {
    return refuse(absl::StrCat(options_.max_concurrent_calls,
                               " calls in progress, the server's --max_concurrent_calls"));
  }
  if (pool_ != nullptr && options_.max_queued >= 0 && pool_->queued() >= options_.max_queued) {
    return refuse(
        absl::StrCat(pool_->queued(), " tasks wait for a worker, the server's --max_queued_calls"));
  }
  std::shared_ptr<Counter> counter = counter_;
  return Ticket(static_cast<void*>(counter.get()),
                [counter](void*) { counter->in_flight.fetch_sub(1); });
}

void Dispatcher::Run(std::function<void()> task) {
  if (pool_ == nullptr) {
    task();
    return;
  }
  pool_->Submit(std::move(task));
}

exec::Executor& Dispatcher::executor() {
  if (pool_ == nullptr) return inline_;
  return *pool_;
}

}  // namespace maas::adapter

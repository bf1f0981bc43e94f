#include "common/exec/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

namespace maas::exec {

int HardwareThreads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

WorkerPool::WorkerPool(Options options) {
  const int threads = options.threads > 0 ? options.threads : HardwareThreads();
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

bool WorkerPool::TrySubmit(std::function<void()> task, int64_t max_queued) {
  absl::MutexLock lock(&mu_);
  if (max_queued >= 0 && static_cast<int64_t>(queue_.size()) >= max_queued) return false;
  queue_.push_back(std::move(task));
  return true;
}

void WorkerPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(task));
}

int64_t WorkerPool::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t WorkerPool::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

void WorkerPool::WorkerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    task = nullptr;  // release captures outside the lock, before counting the task as done
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

namespace {

// The shared state of one ParallelFor: helpers may start after the call returned (they then find
// no item left and touch nothing else), so it lives in a shared_ptr.
struct ParallelForState {
  explicit ParallelForState(int64_t n) : n(n) {}
  const int64_t n;
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  int64_t done ABSL_GUARDED_BY(mu) = 0;

  // Claims and runs items until none is left. `fn` is only dereferenced for a claimed item, and
  // the caller of ParallelFor waits for every claimed item, so it is still alive then.
  void RunItems(const std::function<void(int64_t)>* fn) {
    int64_t finished = 0;
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      (*fn)(i);
      ++finished;
    }
    if (finished > 0) {
      absl::MutexLock lock(&mu);
      done += finished;
    }
  }
};

}  // namespace

void WorkerPool::ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || workers_.size() <= 1) {
    // One worker: the caller alone is as fast, and never waits behind queued calls.
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto state = std::make_shared<ParallelForState>(n);
  const int64_t helpers = std::min<int64_t>(n - 1, static_cast<int64_t>(workers_.size()));
  {
    // Helpers go to the front: they finish work already admitted before new calls start.
    absl::MutexLock lock(&mu_);
    for (int64_t h = 0; h < helpers; ++h) {
      queue_.push_front([state, f = &fn] { state->RunItems(f); });
    }
  }
  state->RunItems(&fn);
  absl::MutexLock lock(&state->mu);
  auto all_done = [&state]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->done == state->n; };
  state->mu.Await(absl::Condition(&all_done));
}

}  // namespace maas::exec

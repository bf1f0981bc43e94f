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
  queue_.push_back(Task{std::move(task)});
  queued_others_.fetch_add(1);
  return true;
}

void WorkerPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(Task{std::move(task)});
  queued_others_.fetch_add(1);
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
      task = std::move(queue_.front().run);
      if (queue_.front().helper) {
        --queued_helpers_;
      } else {
        queued_others_.fetch_sub(1);
      }
      queue_.pop_front();
      ++running_;
    }
    task();
    task = nullptr;  // release captures outside the lock, before counting the task as done
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

// The shared state of one ParallelFor: helpers may start after the call returned (they then find
// no item left and touch nothing else), so it lives in a shared_ptr.
struct WorkerPool::ParallelForState {
  explicit ParallelForState(int64_t n) : n(n) {}
  const int64_t n;
  std::atomic<int64_t> next{0};
  absl::Mutex mu;
  int64_t done ABSL_GUARDED_BY(mu) = 0;

  void AddDone(int64_t finished) {
    if (finished == 0) return;
    absl::MutexLock lock(&mu);
    done += finished;
  }
};

// `fn` is only dereferenced for a claimed item, and the caller of ParallelFor waits for every
// claimed item, so it is still alive then.
void WorkerPool::RunHelper(const std::shared_ptr<ParallelForState>& state,
                           const std::function<void(int64_t)>* fn) {
  int64_t finished = 0;
  for (int64_t i = state->next.fetch_add(1); i < state->n; i = state->next.fetch_add(1)) {
    (*fn)(i);
    ++finished;
    if (state->next.load() >= state->n || queued_others_.load(std::memory_order_relaxed) == 0) {
      continue;  // (the loop's next claim ends it when no item is left)
    }
    absl::MutexLock lock(&mu_);
    if (queued_others_.load() > 0) {
      // Other calls wait: let them have this worker, continue behind them.
      queue_.push_back(Task{[this, state, fn] { RunHelper(state, fn); }, /*helper=*/true});
      ++queued_helpers_;
      break;
    }
  }
  state->AddDone(finished);
}

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
    // Helpers go to the front: they finish work already admitted before new calls start (and
    // step aside between items while other calls wait, RunHelper).
    absl::MutexLock lock(&mu_);
    for (int64_t h = 0; h < helpers; ++h) {
      queue_.push_front(Task{[this, state, f = &fn] { RunHelper(state, f); }, /*helper=*/true});
      ++queued_helpers_;
    }
  }
  // The caller claims items until none is left, whatever waits: its call holds this thread anyway.
  int64_t finished = 0;
  for (int64_t i = state->next.fetch_add(1); i < n; i = state->next.fetch_add(1)) {
    fn(i);
    ++finished;
  }
  state->AddDone(finished);
  absl::MutexLock lock(&state->mu);
  auto all_done = [&state]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->done == state->n; };
  state->mu.Await(absl::Condition(&all_done));
}

}  // namespace maas::exec

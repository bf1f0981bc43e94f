// WorkerPool: the one bounded pool of threads per process on which every request's real work runs.
//
//   WorkerPool pool({.threads = 4});
//   if (!pool.TrySubmit([] { ...a call's work... }, /*max_queued=*/64)) { ...refuse the call... }
//   pool.ParallelFor(n, fn);   // from any thread, including a pool task: the caller takes part
//
// Tasks run in submission order on `threads` workers. TrySubmit refuses when `max_queued` tasks
// already wait for a worker (admission control: an overload turns into fast refusals, never into a
// growing queue); Submit always queues (the continuation of a call that was already admitted, whose
// number is bounded by the admission limit). ParallelFor spreads items over idle workers and the
// calling thread, which claims items itself, so nested ParallelFor calls never deadlock even when
// every worker is busy. Its helpers start ahead of queued tasks (work already admitted finishes
// first) but give their worker up between two items while other tasks wait, queueing again behind
// them: one long call never holds every worker while others wait (it keeps its own thread). The
// destructor runs every queued task, then joins the workers.
// Thread-safe.
#ifndef MAAS_COMMON_EXEC_WORKER_POOL_H_
#define MAAS_COMMON_EXEC_WORKER_POOL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/exec/executor.h"

namespace maas::exec {

class WorkerPool final : public Executor {
 public:
  struct Options {
    // Worker threads (>= 1). 0 = the machine's hardware threads.
    int threads = 0;
  };

  explicit WorkerPool(Options options);
  // Runs every task still queued, then joins the workers. REQUIRES: not called from a pool task.
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` unless `max_queued` tasks already wait for a worker; false = refused (the task
  // is dropped). max_queued < 0 = no bound.
  bool TrySubmit(std::function<void()> task, int64_t max_queued);
  // Queues `task` unconditionally.
  void Submit(std::function<void()> task);

  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) override;
  int parallelism() const override { return static_cast<int>(workers_.size()); }

  // Tasks waiting for a worker (not counting running ones).
  int64_t queued() const;
  // Tasks running right now.
  int64_t running() const;

 private:
  struct Task {
    std::function<void()> run;
    bool helper = false;  // a ParallelFor helper
  };
  struct ParallelForState;

  void WorkerLoop();
  // A ParallelFor helper: claims and runs items of `state` until none is left, or until tasks
  // other than helpers wait for a worker (then it queues itself behind them).
  void RunHelper(const std::shared_ptr<ParallelForState>& state,
                 const std::function<void(int64_t)>* fn);

  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  int64_t queued_helpers_ ABSL_GUARDED_BY(mu_) = 0;  // helpers in queue_
  // Tasks in queue_ other than helpers (written under mu_; read without it between two items).
  std::atomic<int64_t> queued_others_{0};
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

// The number of hardware threads (>= 1).
int HardwareThreads();

}  // namespace maas::exec

#endif  // MAAS_COMMON_EXEC_WORKER_POOL_H_

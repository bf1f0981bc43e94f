// A test-only Executor that runs each ParallelFor on `threads` std::threads (the caller included),
// handing out items dynamically so the order in which items run differs from run to run: results
// that depend on it would show up as test failures.
#ifndef MAAS_TESTS_SERVICES_GENERATIVE_THREAD_EXECUTOR_H_
#define MAAS_TESTS_SERVICES_GENERATIVE_THREAD_EXECUTOR_H_

#include <atomic>
#include <thread>
#include <vector>

#include "common/exec/executor.h"

namespace maas::testing {

class ThreadExecutor final : public exec::Executor {
 public:
  explicit ThreadExecutor(int threads) : threads_(threads) {}
  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) override {
    std::atomic<int64_t> next{0};
    const auto work = [&] {
      for (int64_t i = next++; i < n; i = next++) fn(i);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads_; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  }
  int parallelism() const override { return threads_; }

 private:
  int threads_;
};

}  // namespace maas::testing

#endif  // MAAS_TESTS_SERVICES_GENERATIVE_THREAD_EXECUTOR_H_

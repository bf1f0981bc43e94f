// Executor: how core code spreads one request's work over the process's worker pool.
//
// The server kit owns one bounded worker pool per process (--threads). Core code never creates
// threads; it receives an Executor and splits a request into independent items:
//
//   executor.ParallelFor(num_chunks, [&](int64_t chunk) { ...work on chunk, writes only its
//   slice... });
//
// Results must not depend on how items are spread over threads (the determinism contract): each
// item writes only its own output slice and draws randomness only from its own counter range.
// InlineExecutor runs everything on the calling thread (tests, tools, --threads=1).
#ifndef MAAS_COMMON_EXEC_EXECUTOR_H_
#define MAAS_COMMON_EXEC_EXECUTOR_H_

#include <cstdint>
#include <functional>

namespace maas::exec {

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs fn(i) once for every i in [0, n), possibly on several threads at once, and returns when
  // all have returned. The calling thread takes part, so calling ParallelFor from inside a pool
  // task never deadlocks, even when every worker is busy. fn must be safe to call concurrently for
  // distinct i. n <= 0 does nothing.
  virtual void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) = 0;

  // How many threads may run items of one ParallelFor at once (>= 1); a hint for chunk sizes.
  virtual int parallelism() const = 0;
};

// Runs every item on the calling thread, in order.
class InlineExecutor final : public Executor {
 public:
  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn) override {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
  int parallelism() const override { return 1; }
};

}  // namespace maas::exec

#endif  // MAAS_COMMON_EXEC_EXECUTOR_H_

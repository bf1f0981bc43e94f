// A server-wide cap on the bytes that in-flight client streams hold (training data received and
// not yet released), across calls: a per-stream cap (StreamLimit) bounds one call, this bounds
// their sum, so that concurrent large fits cannot together exceed the process's memory (a pod's
// limit) where each alone is allowed.
//
//   StreamBudget budget(256 << 20, "--max_total_fit_bytes");
//   if (!budget.TryAdd(n)) ...refuse...;   // later, when the data is dropped:
//   budget.Release(n);
//
// Transport-free; thread-safe.
#ifndef MAAS_COMMON_ADAPTER_STREAM_BUDGET_H_
#define MAAS_COMMON_ADAPTER_STREAM_BUDGET_H_

#include <atomic>
#include <cstdint>

namespace maas::adapter {

class StreamBudget {
 public:
  // max_bytes <= 0: no cap (TryAdd always succeeds, the total is still counted). `flag` names the
  // setting in refusals; not owned, must outlive the budget (a string literal).
  explicit StreamBudget(int64_t max_bytes, const char* flag = "")
      : max_bytes_(max_bytes), flag_(flag) {}
  StreamBudget(const StreamBudget&) = delete;
  StreamBudget& operator=(const StreamBudget&) = delete;

  // Adds `bytes` (>= 0) to the total held, unless that would take it above the cap: then false and
  // nothing is added.
  bool TryAdd(int64_t bytes) {
    int64_t held = held_.load(std::memory_order_relaxed);
    do {
      if (max_bytes_ > 0 && held + bytes > max_bytes_) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    return true;
  }
  // Gives back bytes an earlier TryAdd took.
  void Release(int64_t bytes) { held_.fetch_sub(bytes, std::memory_order_relaxed); }

  int64_t held() const { return held_.load(std::memory_order_relaxed); }
  int64_t max_bytes() const { return max_bytes_; }
  const char* flag() const { return flag_; }

 private:
  const int64_t max_bytes_;
  const char* const flag_;
  std::atomic<int64_t> held_{0};
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_STREAM_BUDGET_H_

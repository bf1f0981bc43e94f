// ScratchPool: analyzer scratches kept from one call to the next. A scratch grows to the model's
// size (a count vector of one double per feature, zeroed between texts), so a call that made its
// own would allocate and zero-fill it every time: for a single short text that costs more than
// classifying it. A call leases a scratch per task and the lease returns it.
//
//   ScratchPool::Lease scratch = pool.Acquire();
//   vectorizer.Transform(text, scratch.get(), &row);
//
// At most `max_kept` idle scratches are kept (about one per worker thread); more are freed, and
// so are the text-sized buffers of a scratch above kMaxKeptTextBytes.
// Thread-safe. The pool must outlive its leases.
#ifndef MAAS_SERVICES_DISCRIMINATIVE_CORE_SCRATCH_POOL_H_
#define MAAS_SERVICES_DISCRIMINATIVE_CORE_SCRATCH_POOL_H_

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/discriminative/core/text_analysis.h"

namespace maas::discriminative {

class ScratchPool {
 public:
  struct Return {
    ScratchPool* pool;
    void operator()(AnalyzerScratch* scratch) const { pool->Release(scratch); }
  };
  using Lease = std::unique_ptr<AnalyzerScratch, Return>;

  // The most text-sized buffer bytes an idle scratch keeps (AnalyzerScratch::TextBufferBytes):
  // a longer text's are freed when its lease ends, so that one long text does not leave tens of
  // MB in each idle scratch of each model, outside the model cache's budget.
  static constexpr size_t kMaxKeptTextBytes = size_t{1} << 20;

  explicit ScratchPool(size_t max_kept = 64) : max_kept_(max_kept) {}
  ScratchPool(const ScratchPool&) = delete;
  ScratchPool& operator=(const ScratchPool&) = delete;

  // An idle scratch (its buffers as the last text left them: scratches hold no state between
  // texts), or a new one.
  Lease Acquire() {
    std::unique_ptr<AnalyzerScratch> scratch;
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        scratch = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (scratch == nullptr) scratch = std::make_unique<AnalyzerScratch>();
    return Lease(scratch.release(), Return{this});
  }

  // Idle scratches now.
  size_t idle() const {
    absl::MutexLock lock(&mu_);
    return idle_.size();
  }

 private:
  void Release(AnalyzerScratch* scratch) {
    std::unique_ptr<AnalyzerScratch> owned(scratch);
    if (owned->TextBufferBytes() > kMaxKeptTextBytes) owned->FreeTextBuffers();
    absl::MutexLock lock(&mu_);
    if (idle_.size() < max_kept_) idle_.push_back(std::move(owned));
  }

  const size_t max_kept_;
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<AnalyzerScratch>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace maas::discriminative

#endif  // MAAS_SERVICES_DISCRIMINATIVE_CORE_SCRATCH_POOL_H_

// Exports a service's model cache to Prometheus: the load time of every version loaded
// (maas_model_load_seconds{model}) and the gauges maas_model_cache_bytes and
// maas_model_cache_versions; and maas_heap_free_resident_bytes, what the process holds in RAM
// beyond its live malloc blocks (what --malloc_release_mb bounds; see malloc_retention.h), so that
// an operator can tell a large RSS of models from one of retained freed memory. Both services call
// this once from main.cc after the server started.
//
//   if (server::ServerMetrics* metrics = server->metrics()) {
//     server::ExportModelCacheMetrics(*metrics, repository);
//   }
#ifndef MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_
#define MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_

#include <cstdint>
#include <limits>
#include <string_view>

#include "absl/time/time.h"
#include "common/registry/model_repository.h"
#include "common/server/malloc_retention.h"
#include "common/server/metrics.h"

namespace maas::server {

// REQUIRES: `metrics` and `repository` outlive the server's metrics endpoint.
template <class Loaded>
void ExportModelCacheMetrics(ServerMetrics& metrics,
                             registry::ModelRepository<Loaded>& repository) {
  repository.SetLoadObserver([&metrics](std::string_view name, int64_t, absl::Duration took,
                                        int64_t) { metrics.ModelLoaded(name, took); });
  metrics.AddGaugeCallback(
      "maas_model_cache_bytes",
      "Bytes the loaded model versions hold in memory, as charged against --model_cache_bytes.",
      [&repository] { return static_cast<double>(repository.cache().loaded_bytes()); });
  metrics.AddGaugeCallback(
      "maas_model_cache_versions", "Model versions loaded in the model cache.",
      [&repository] { return static_cast<double>(repository.cache().loaded_versions()); });
  metrics.AddGaugeCallback(
      "maas_heap_free_resident_bytes",
      "Bytes the process holds in RAM outside live malloc blocks (resident anonymous memory minus "
      "live blocks): freed heap kept by the allocator, thread stacks, other mappings. Freed heap "
      "beyond --malloc_release_mb goes back to the kernel. NaN where it cannot be measured.",
      [] {
        const absl::StatusOr<HeapResidency> now = MeasureHeapResidency();
        return now.ok() ? static_cast<double>(now->unused_bytes())
                        : std::numeric_limits<double>::quiet_NaN();
      });
}

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_

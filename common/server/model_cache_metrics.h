// Exports a service's model cache to Prometheus: the load time of every version loaded
// (maas_model_load_seconds{model}) and the gauges maas_model_cache_bytes and
// maas_model_cache_versions (the heap's metrics beside them: ExportHeapMetrics in metrics.h). Both
// services call this once from main.cc after the server started.
//
//   if (server::ServerMetrics* metrics = server->metrics()) {
//     server::ExportModelCacheMetrics(*metrics, repository);
//   }
#ifndef MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_
#define MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_

#include <cstdint>
#include <string_view>

#include "absl/time/time.h"
#include "common/registry/model_repository.h"
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
}

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_MODEL_CACHE_METRICS_H_

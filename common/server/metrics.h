// Prometheus metrics of one server, served as text on http://<host>:<port>/metrics.
//
//   MAAS_ASSIGN_OR_RETURN(auto metrics, ServerMetrics::Start("0.0.0.0", 9090, "maas-generative"));
//   metrics->CallStarted();  ...  metrics->CallFinished("/pkg.Service/Method", code, duration);
//
// Families (label `server` on all):
//   maas_rpc_requests_total{method, code}   counter: finished calls
//   maas_rpc_duration_seconds{method}       histogram: call latency, from the first byte to the
//   status maas_rpc_in_flight                      gauge: calls started and not finished
//   maas_model_requests_total{model, code}  counter: finished calls that named a model
//   maas_model_documents_total{model}       counter: texts classified
//   maas_model_samples_total{model}         counter: samples produced
//   maas_model_cache_bytes / maas_model_cache_versions  gauges (services): what the model cache
//                                           holds, as charged against --model_cache_bytes
//   maas_model_load_seconds{model}          histogram: time to read and parse a model version from
//                                           the store into the model cache (one per load; reloads
//                                           after eviction count again)
//   maas_heap_free_resident_bytes           gauge (services, ExportHeapMetrics): RAM held outside
//                                           live malloc blocks
//   maas_heap_releases_total, maas_heap_released_bytes_total, maas_heap_release_seconds_total
//                                           counters (services): the freed-memory releaser's trims,
//                                           what they returned, the time they took
// `model` labels are bounded: beyond kMaxModelLabels distinct names, further models count as
// "_other" (in every per-model family; no model name starts with '_'); a name takes a label with
// its first call that succeeds (calls refused before, e.g. for a made-up name, count as "_other").
// Thread-safe.
#ifndef MAAS_COMMON_SERVER_METRICS_H_
#define MAAS_COMMON_SERVER_METRICS_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace maas::server {

class FreedMemoryReleaser;

class ServerMetrics {
 public:
  // Starts the HTTP exposer on host:port (0 = pick a free port). UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Start(const std::string& host, int port,
                                                              const std::string& server_name);
  ~ServerMetrics();

  // Connections /metrics serves at once, and how long one may take to send its request headers.
  static constexpr int kMetricsThreads = 4;
  static constexpr int kMetricsRequestTimeoutMs = 5000;

  // The port /metrics is served on.
  int port() const { return port_; }
  // For metrics of a service's own (e.g. samples generated); families registered here are exposed
  // too.
  prometheus::Registry& registry();

  void CallStarted();
  // `method` is a label only when it names a method this binary knows (its protos, health,
  // reflection); any other client-supplied path counts as "unknown", so label sets stay bounded.
  // `model` (may be empty) counts in maas_model_requests_total; beyond kMaxModelLabels distinct
  // names, further models count as kOtherModels. Only a call that ends OK takes a label slot;
  // others for a name without a label yet count as kOtherModels (made-up names, refused NOT_FOUND,
  // INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ..., must not crowd out real models).
  // `documents` / `samples`: texts classified and samples produced by the call (per model).
  void CallFinished(std::string_view method, grpc::StatusCode code, absl::Duration duration,
                    std::string_view model = {}, int64_t documents = 0, int64_t samples = 0);

  // A model version was loaded into the model cache in `took` (ModelCache's load observer).
  void ModelLoaded(std::string_view model, absl::Duration took);

  // Adds a gauge `name` (label `server`) whose value `value()` returns at every scrape, e.g. the
  // model cache's bytes. `value` must stay callable while this object lives; thread-safe.
  void AddGaugeCallback(const std::string& name, const std::string& help,
                        std::function<double()> value);
  // The same for a counter (`value()` must never decrease), e.g. one a component keeps itself.
  void AddCounterCallback(const std::string& name, const std::string& help,
                          std::function<double()> value);

  static constexpr size_t kMaxModelLabels = 200;
  // The `model` label of every model beyond the cap and of calls no label slot was taken for. Not
  // a model name (those start with [a-z0-9]), so a model named "other" keeps its own series.
  static constexpr std::string_view kOtherModels = "_other";

 private:
  struct Families;
  ServerMetrics() = default;
  // The label value of `model`: itself if it has a slot; else, with `may_take_slot` and fewer
  // than kMaxModelLabels slots taken, itself (taking one); else kOtherModels.
  std::string ModelLabel(std::string_view model, bool may_take_slot = true);

  static constexpr size_t kNumCodes = 17;  // grpc::StatusCode 0..16
  struct MethodSeries;
  struct ModelSeries;
  MethodSeries& MethodSeriesOf(std::string_view method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(series_mu_);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::string server_name_;
  // The series of each method and model label, found once (bounded: the methods of this binary plus
  // "unknown"; kMaxModelLabels models plus kOtherModels).
  absl::Mutex series_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> method_series_
      ABSL_GUARDED_BY(series_mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ModelSeries>> model_series_
      ABSL_GUARDED_BY(series_mu_);
  std::vector<std::shared_ptr<prometheus::Collectable>> callbacks_;
  absl::Mutex models_mu_;
  std::set<std::string, std::less<>> models_ ABSL_GUARDED_BY(models_mu_);
  int port_ = 0;
};

// Exports a service's heap (malloc_retention.h), read at every scrape: the gauge
// maas_heap_free_resident_bytes (what the process holds in RAM outside live malloc blocks, so a
// large RSS of retained freed memory can be told from one of models), and the counters of
// `releaser`'s releases (--malloc_release_mb): maas_heap_releases_total,
// maas_heap_released_bytes_total and maas_heap_release_seconds_total, all 0 when `releaser` is
// null (releases off). Both services call it once from main.cc after the server started.
// REQUIRES: `releaser` (if not null) outlives `metrics`.
//
//   if (ServerMetrics* metrics = server->metrics()) ExportHeapMetrics(*metrics, releaser.get());
void ExportHeapMetrics(ServerMetrics& metrics, const FreedMemoryReleaser* releaser);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_METRICS_H_

#include "common/server/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <array>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/server/malloc_retention.h"
#include "common/server/server.h"
#include "google/protobuf/descriptor.h"

namespace maas::server {

struct ServerMetrics::Families {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Histogram>* duration;
  prometheus::Gauge* in_flight;
  prometheus::Family<prometheus::Counter>* model_requests;
  prometheus::Family<prometheus::Counter>* model_documents;
  prometheus::Family<prometheus::Counter>* model_samples;
  prometheus::Family<prometheus::Histogram>* model_load;
};

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Start(
    const std::string& host, int port, const std::string& server_name) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port ", port, " is not in 0..65535"));
  }
  std::unique_ptr<ServerMetrics> metrics(new ServerMetrics());
  const std::string address = FormatAddress(host, port);
  try {
    // civetweb's defaults (2 threads, 30 s to read a request) let two silent or trickling
    // connections hold /metrics from every scraper; more threads, and a request's headers must
    // arrive within 5 s in all.
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", address, "num_threads", std::to_string(kMetricsThreads),
        "request_timeout_ms", std::to_string(kMetricsRequestTimeoutMs)});
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  const std::vector<int> ports = metrics->exposer_->GetListeningPorts();
  if (ports.empty())
    return absl::UnavailableError(absl::StrCat("metrics exposer on ", address, " has no port"));
  metrics->port_ = ports.front();
  metrics->registry_ = std::make_shared<prometheus::Registry>();
  const prometheus::Labels server{{"server", server_name}};
  auto families = std::make_unique<Families>();
  families->requests = &prometheus::BuildCounter()
                            .Name("maas_rpc_requests_total")
                            .Help("Finished gRPC calls by method and status code.")
                            .Labels(server)
                            .Register(*metrics->registry_);
  families->duration =
      &prometheus::BuildHistogram()
           .Name("maas_rpc_duration_seconds")
           .Help("gRPC call latency in seconds, from the start of the call to its status.")
           .Labels(server)
           .Register(*metrics->registry_);
  families->in_flight = &prometheus::BuildGauge()
                             .Name("maas_rpc_in_flight")
                             .Help("gRPC calls started and not finished.")
                             .Labels(server)
                             .Register(*metrics->registry_)
                             .Add({});
  families->model_requests = &prometheus::BuildCounter()
                                  .Name("maas_model_requests_total")
                                  .Help(
                                      "Finished gRPC calls that named a model, by model and "
                                      "status code (at most 200 model names, then \"other\").")
                                  .Labels(server)
                                  .Register(*metrics->registry_);
  families->model_documents = &prometheus::BuildCounter()
                                   .Name("maas_model_documents_total")
                                   .Help("Texts classified, by model.")
                                   .Labels(server)
                                   .Register(*metrics->registry_);
  families->model_samples = &prometheus::BuildCounter()
                                 .Name("maas_model_samples_total")
                                 .Help("Samples produced, by model.")
                                 .Labels(server)
                                 .Register(*metrics->registry_);
  families->model_load = &prometheus::BuildHistogram()
                              .Name("maas_model_load_seconds")
                              .Help(
                                  "Time to read and parse a model version into the model cache, "
                                  "by model (at most 200 model names, then \"other\").")
                              .Labels(server)
                              .Register(*metrics->registry_);
  metrics->families_ = std::move(families);
  metrics->server_name_ = server_name;
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

ServerMetrics::~ServerMetrics() = default;

prometheus::Registry& ServerMetrics::registry() { return *registry_; }

void ServerMetrics::CallStarted() { families_->in_flight->Increment(); }

std::string ServerMetrics::ModelLabel(std::string_view model, bool may_take_slot) {
  absl::MutexLock lock(&models_mu_);
  if (models_.count(model) != 0) return std::string(model);
  if (may_take_slot && models_.size() < kMaxModelLabels) {
    models_.emplace(model);
    return std::string(model);
  }
  return std::string(kOtherModels);
}

void ServerMetrics::ModelLoaded(std::string_view model, absl::Duration took) {
  // Loads take from well under a millisecond (a small model from the page cache) to minutes.
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  families_->model_load->Add({{"model", ModelLabel(model)}}, kBuckets)
      .Observe(absl::ToDoubleSeconds(took));
}

namespace {

// One gauge or counter read at scrape time.
class MetricCallback final : public prometheus::Collectable {
 public:
  MetricCallback(prometheus::MetricType type, std::string name, std::string help,
                 std::string server, std::function<double()> value)
      : type_(type),
        name_(std::move(name)),
        help_(std::move(help)),
        server_(std::move(server)),
        value_(std::move(value)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = name_;
    family.help = help_;
    family.type = type_;
    prometheus::ClientMetric metric;
    metric.label.push_back({"server", server_});
    if (type_ == prometheus::MetricType::Counter) {
      metric.counter.value = value_();
    } else {
      metric.gauge.value = value_();
    }
    family.metric.push_back(std::move(metric));
    return {std::move(family)};
  }

 private:
  const prometheus::MetricType type_;
  const std::string name_;
  const std::string help_;
  const std::string server_;
  const std::function<double()> value_;
};

}  // namespace

void ServerMetrics::AddGaugeCallback(const std::string& name, const std::string& help,
                                     std::function<double()> value) {
  auto gauge = std::make_shared<MetricCallback>(prometheus::MetricType::Gauge, name, help,
                                                server_name_, std::move(value));
  exposer_->RegisterCollectable(gauge);
  absl::MutexLock lock(&models_mu_);
  callbacks_.push_back(std::move(gauge));
}

void ServerMetrics::AddCounterCallback(const std::string& name, const std::string& help,
                                       std::function<double()> value) {
  auto counter = std::make_shared<MetricCallback>(prometheus::MetricType::Counter, name, help,
                                                  server_name_, std::move(value));
  exposer_->RegisterCollectable(counter);
  absl::MutexLock lock(&models_mu_);
  callbacks_.push_back(std::move(counter));
}

void ExportHeapMetrics(ServerMetrics& metrics, const FreedMemoryReleaser* releaser) {
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
  metrics.AddCounterCallback(
      "maas_heap_releases_total",
      "Releases of free heap pages to the kernel (malloc_trim) made because the freed memory held "
      "in RAM grew by more than --malloc_release_mb. 0 with --malloc_release_mb 0.",
      [releaser] { return releaser ? static_cast<double>(releaser->releases()) : 0.0; });
  metrics.AddCounterCallback(
      "maas_heap_released_bytes_total",
      "Bytes those releases returned: the sum over releases of the drop in anonymous resident "
      "memory from right before to right after each, less blocks unmapped meanwhile (0 if it "
      "rose).",
      [releaser] { return releaser ? static_cast<double>(releaser->released_bytes()) : 0.0; });
  metrics.AddCounterCallback(
      "maas_heap_release_seconds_total",
      "Wall time those releases took. A release holds each malloc arena's lock while it walks "
      "that arena: with MALLOC_ARENA_MAX at 1-2, calls stall while it runs.",
      [releaser] { return releaser ? absl::ToDoubleSeconds(releaser->release_time()) : 0.0; });
}

namespace {

// True when `path` ("/pkg.Service/Method") names a method compiled into this binary, or of the
// health and reflection services every server has.
bool KnownMethod(std::string_view path) {
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos) return false;
  const std::string_view service = path.substr(1, slash - 1);
  const std::string_view method = path.substr(slash + 1);
  if (service == "grpc.health.v1.Health" && (method == "Check" || method == "Watch")) return true;
  if ((service == "grpc.reflection.v1alpha.ServerReflection" ||
       service == "grpc.reflection.v1.ServerReflection") &&
      method == "ServerReflectionInfo") {
    return true;
  }
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(std::string(service));
  return descriptor != nullptr && descriptor->FindMethodByName(std::string(method)) != nullptr;
}

}  // namespace

// The series of one method label (a known method path, or "unknown"), found once: prometheus-cpp
// builds and hashes a label map on every Family::Add, which would cost more than a small call.
struct ServerMetrics::MethodSeries {
  prometheus::Histogram* duration = nullptr;
  std::array<prometheus::Counter*, kNumCodes> requests{};  // by status code, added when first seen
};

// The series of one model label.
struct ServerMetrics::ModelSeries {
  std::array<prometheus::Counter*, kNumCodes> requests{};
  prometheus::Counter* documents = nullptr;
  prometheus::Counter* samples = nullptr;
};

ServerMetrics::MethodSeries& ServerMetrics::MethodSeriesOf(std::string_view method) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  auto it = method_series_.find(absl::string_view(method.data(), method.size()));
  if (it != method_series_.end()) return *it->second;
  // Only known paths become keys, so the map is bounded by the methods of this binary.
  const std::string label = KnownMethod(method) ? std::string(method) : std::string("unknown");
  std::unique_ptr<MethodSeries>& series = method_series_[label];
  if (series == nullptr) {
    series = std::make_unique<MethodSeries>();
    series->duration = &families_->duration->Add({{"method", label}}, kBuckets);
  }
  return *series;
}

void ServerMetrics::CallFinished(std::string_view method, grpc::StatusCode code,
                                 absl::Duration duration, std::string_view model, int64_t documents,
                                 int64_t samples) {
  const size_t c = static_cast<size_t>(code) < kNumCodes ? static_cast<size_t>(code)
                                                         : static_cast<size_t>(grpc::UNKNOWN);
  families_->in_flight->Decrement();
  prometheus::Counter* requests;
  prometheus::Histogram* latency;
  prometheus::Counter* model_requests = nullptr;
  prometheus::Counter* model_documents = nullptr;
  prometheus::Counter* model_samples = nullptr;
  {
    absl::MutexLock lock(&series_mu_);
    MethodSeries& series = MethodSeriesOf(method);
    latency = series.duration;
    if (series.requests[c] == nullptr) {
      const std::string label = KnownMethod(method) ? std::string(method) : "unknown";
      series.requests[c] = &families_->requests->Add(
          {{"method", label},
           {"code", std::string(StatusCodeName(static_cast<grpc::StatusCode>(c)))}});
    }
    requests = series.requests[c];
    if (!model.empty()) {
      auto it = model_series_.find(absl::string_view(model.data(), model.size()));
      if (it == model_series_.end()) {
        // Itself, or kOtherModels beyond the cap. Only a call that succeeded takes a slot: a name
        // refused before any stored model answered (never stored, malformed, not allowed, over a
        // limit, the server busy) could be made up, and a few hundred cheap calls with made-up
        // names would otherwise leave every real model counted as kOtherModels.
        const std::string label = ModelLabel(model, code == grpc::StatusCode::OK);
        it = model_series_.find(label);
        if (it == model_series_.end()) {
          it = model_series_.emplace(label, std::make_unique<ModelSeries>()).first;
        }
      }
      ModelSeries& m = *it->second;
      const std::string& label = it->first;
      if (m.requests[c] == nullptr) {
        m.requests[c] = &families_->model_requests->Add(
            {{"model", label},
             {"code", std::string(StatusCodeName(static_cast<grpc::StatusCode>(c)))}});
      }
      model_requests = m.requests[c];
      if (documents > 0) {
        if (m.documents == nullptr)
          m.documents = &families_->model_documents->Add({{"model", label}});
        model_documents = m.documents;
      }
      if (samples > 0) {
        if (m.samples == nullptr) m.samples = &families_->model_samples->Add({{"model", label}});
        model_samples = m.samples;
      }
    }
  }
  requests->Increment();
  latency->Observe(absl::ToDoubleSeconds(duration));
  if (model_requests != nullptr) model_requests->Increment();
  if (model_documents != nullptr) model_documents->Increment(static_cast<double>(documents));
  if (model_samples != nullptr) model_samples->Increment(static_cast<double>(samples));
}

}  // namespace maas::server

#include "common/server/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>
#include <vector>

#include "absl/strings/str_cat.h"
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
};

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Start(
    const std::string& host, int port, const std::string& server_name) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics port ", port, " is not in 0..65535"));
  }
  std::unique_ptr<ServerMetrics> metrics(new ServerMetrics());
  const std::string address = FormatAddress(host, port);
  try {
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(address);
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
  metrics->families_ = std::move(families);
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

ServerMetrics::~ServerMetrics() = default;

prometheus::Registry& ServerMetrics::registry() { return *registry_; }

void ServerMetrics::CallStarted() { families_->in_flight->Increment(); }

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

void ServerMetrics::CallFinished(std::string_view method, grpc::StatusCode code,
                                 absl::Duration duration, std::string_view model, int64_t documents,
                                 int64_t samples) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  const std::string m = KnownMethod(method) ? std::string(method) : std::string("unknown");
  if (!model.empty()) {
    std::string label(model);
    {
      absl::MutexLock lock(&models_mu_);
      if (models_.count(label) == 0) {
        if (models_.size() < kMaxModelLabels) {
          models_.insert(label);
        } else {
          label = "other";
        }
      }
    }
    families_->model_requests->Add({{"model", label}, {"code", std::string(StatusCodeName(code))}})
        .Increment();
    if (documents > 0) {
      families_->model_documents->Add({{"model", label}}).Increment(static_cast<double>(documents));
    }
    if (samples > 0) {
      families_->model_samples->Add({{"model", label}}).Increment(static_cast<double>(samples));
    }
  }
  families_->in_flight->Decrement();
  families_->requests->Add({{"method", m}, {"code", std::string(StatusCodeName(code))}})
      .Increment();
  families_->duration->Add({{"method", m}}, kBuckets).Observe(absl::ToDoubleSeconds(duration));
}

}  // namespace maas::server

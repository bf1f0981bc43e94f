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

namespace maas::server {

struct ServerMetrics::Families {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Histogram>* duration;
  prometheus::Gauge* in_flight;
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
  metrics->families_ = std::move(families);
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  return metrics;
}

ServerMetrics::~ServerMetrics() = default;

prometheus::Registry& ServerMetrics::registry() { return *registry_; }

void ServerMetrics::CallStarted() { families_->in_flight->Increment(); }

void ServerMetrics::CallFinished(std::string_view method, grpc::StatusCode code,
                                 absl::Duration duration) {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  const std::string m(method);
  families_->in_flight->Decrement();
  families_->requests->Add({{"method", m}, {"code", std::string(StatusCodeName(code))}})
      .Increment();
  families_->duration->Add({{"method", m}}, kBuckets).Observe(absl::ToDoubleSeconds(duration));
}

}  // namespace maas::server

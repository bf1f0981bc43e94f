#include "services/gateway/backends.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>
#include <grpcpp/support/validate_service_config.h>

#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/adapter/byte_buffers.h"
#include "common/health/health_wire.h"
#include "common/status/status_macros.h"
#include "services/gateway/completion.h"

namespace maas::gateway {

using adapter::ByteBufferToString;

using health::DecodeHealthCheckResponse;
using health::EncodeHealthCheckRequest;
using health::kHealthCheckMethod;
using health::ServingStatus;
namespace {

using maas::gateway::v1::BackendHealth;

std::string ServiceLabel(absl::string_view service) {
  return service.empty() ? "\"\" (whole server)" : std::string(service);
}

// One health check, possibly in two attempts (the route's service name, then ""), on gRPC's
// asynchronous API: each attempt's Finish completes on the caller's queue with this as its tag.
// Deletes itself once `done` has been called.
class HealthCall final : public CompletionHandler {
 public:
  HealthCall(grpc::GenericStub* stub, std::string service, std::string target, absl::Time deadline,
             grpc::CompletionQueue* cq, std::function<void(HealthResult)> done)
      : stub_(stub),
        service_(std::move(service)),
        target_(std::move(target)),
        deadline_(deadline),
        cq_(cq),
        done_(std::move(done)) {}

  void StartAttempt(int attempt) {
    attempt_ = attempt;
    // A context is never reused: one per attempt.
    context_ = std::make_unique<grpc::ClientContext>();
    context_->set_deadline(absl::ToChronoTime(deadline_));
    const std::string bytes = EncodeHealthCheckRequest(attempt == 0 ? service_ : "");
    grpc::Slice slice(bytes);
    request_ = grpc::ByteBuffer(&slice, 1);
    response_.Clear();
    reader_ = stub_->PrepareUnaryCall(context_.get(), kHealthCheckMethod, request_, cq_);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

  void OnComplete(bool /*ok*/) override {
    const absl::string_view service = attempt_ == 0 ? absl::string_view(service_) : "";
    HealthResult result;
    result.health = maas::gateway::v1::NOT_SERVING;
    bool unknown_service = status_.error_code() == grpc::StatusCode::NOT_FOUND;
    if (status_.ok()) {
      absl::StatusOr<ServingStatus> serving =
          DecodeHealthCheckResponse(ByteBufferToString(response_));
      if (!serving.ok()) {
        result.detail = absl::StrCat(
            "backend ", target_, " sent an invalid health response: ", serving.status().message());
      } else if (*serving == ServingStatus::kServing) {
        result.health = maas::gateway::v1::SERVING;
      } else if (*serving == ServingStatus::kServiceUnknown) {
        unknown_service = true;
      } else {
        result.detail =
            absl::StrCat("backend ", target_, " reports ",
                         *serving == ServingStatus::kNotServing ? "NOT_SERVING" : "UNKNOWN",
                         " for service ", ServiceLabel(service));
      }
    }
    if (unknown_service) {
      if (attempt_ == 0 && !service_.empty()) {
        StartAttempt(1);  // the backend does not report per-service health: ask for the server.
        return;
      }
      result.detail = absl::StrCat("backend ", target_, " has no health status for service ",
                                   ServiceLabel(service));
    } else if (!status_.ok()) {
      result.detail = absl::StrCat(
          "health check of backend ", target_, " failed: ",
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status_.error_code())), ": ",
          status_.error_message());
    }
    std::function<void(HealthResult)> done = std::move(done_);
    delete this;
    done(std::move(result));
  }

 private:
  grpc::GenericStub* const stub_;
  const std::string service_;
  const std::string target_;
  const absl::Time deadline_;
  grpc::CompletionQueue* const cq_;
  std::function<void(HealthResult)> done_;
  int attempt_ = 0;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::Status status_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backends>> Backends::Create(Router router,
                                                           const ChannelOptions& options) {
  if (options.max_receive_message_bytes <= 0 || options.keepalive_time_ms <= 0 ||
      options.keepalive_timeout_ms <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "channel options must be positive: max_receive_message_bytes=",
        options.max_receive_message_bytes, " keepalive_time_ms=", options.keepalive_time_ms,
        " keepalive_timeout_ms=", options.keepalive_timeout_ms));
  }
  if (options.stream_window_bytes < 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream_window_bytes must be >= 65535 (HTTP/2's minimum window), got ",
                     options.stream_window_bytes));
  }
  if (options.initial_reconnect_backoff_ms <= 0 ||
      options.max_reconnect_backoff_ms < options.initial_reconnect_backoff_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat("reconnect backoff must satisfy 0 < initial_reconnect_backoff_ms (",
                     options.initial_reconnect_backoff_ms, ") <= max_reconnect_backoff_ms (",
                     options.max_reconnect_backoff_ms, ")"));
  }
  if (options.channels_per_route < 1 || options.channels_per_route > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("channels_per_route must be in [1, 64], got ", options.channels_per_route));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  std::vector<RouteChannels> channels;
  for (const Route& route : router.routes()) {
    MAAS_ASSIGN_OR_RETURN(const std::string config, ServiceConfigJson(route, options.retry));
    const std::string error = grpc::experimental::ValidateServiceConfigJSON(config);
    if (!error.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("service config of route ", route.service, " rejected by gRPC: ", error));
    }
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(config);
    args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options.keepalive_time_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options.keepalive_timeout_ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    // Each channel gets its own connections, even when two routes share a target.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Flow control end to end: a fixed per-stream window instead of one grown by BDP probing (which
    // let each stalled stream park tens of MB in the gateway).
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, options.stream_window_bytes);
    // Reconnect quickly to a local backend that restarted (gRPC's defaults wait up to 120 s).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options.initial_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, options.initial_reconnect_backoff_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options.max_reconnect_backoff_ms);
    // dns:/// targets: re-resolve soon after a connection is lost (new or moved replicas).
    args.SetInt(GRPC_ARG_DNS_MIN_TIME_BETWEEN_RESOLUTIONS_MS, 1000);
    RouteChannels rc;
    for (int c = 0; c < options.channels_per_route; ++c) {
      // A distinct argument per channel, so gRPC never merges their connections.
      args.SetInt("maas.gateway.channel_index", c);
      rc.channels.push_back(grpc::CreateCustomChannel(route.target, credentials, args));
      rc.stubs.push_back(std::make_unique<grpc::GenericStub>(rc.channels.back()));
    }
    channels.push_back(std::move(rc));
  }
  return std::unique_ptr<Backends>(new Backends(std::move(router), std::move(channels)));
}

void Backends::CheckHealth(std::size_t i, absl::Duration timeout, grpc::CompletionQueue* cq,
                           std::function<void(HealthResult)> done) const {
  auto* call = new HealthCall(routes_[i].stubs.front().get(), route(i).service, route(i).target,
                              absl::Now() + timeout, cq, std::move(done));
  call->StartAttempt(0);
}

void Backends::ResetConnectBackoff(std::size_t i) const {
  for (const std::shared_ptr<grpc::Channel>& channel : routes_[i].channels) {
    grpc::experimental::ChannelResetConnectionBackoff(channel.get());
  }
}

void Backends::CheckAllHealth(absl::Duration timeout, grpc::CompletionQueue* cq,
                              std::function<void(std::vector<HealthResult>)> done) const {
  struct Join {
    std::mutex mu;
    std::vector<HealthResult> results;
    std::size_t remaining;
    std::function<void(std::vector<HealthResult>)> done;
  };
  auto join = std::make_shared<Join>();
  join->results.resize(size());
  join->remaining = size();
  join->done = std::move(done);
  if (size() == 0) {
    join->done({});
    return;
  }
  for (std::size_t i = 0; i < size(); ++i) {
    CheckHealth(i, timeout, cq, [join, i](HealthResult result) {
      bool last;
      {
        std::lock_guard<std::mutex> lock(join->mu);
        join->results[i] = std::move(result);
        last = --join->remaining == 0;
      }
      if (last) join->done(std::move(join->results));
    });
  }
}

}  // namespace maas::gateway

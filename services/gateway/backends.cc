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
#include "common/status/status_macros.h"
#include "services/gateway/health_wire.h"

namespace maas::gateway {
namespace {

using maas::gateway::v1::BackendHealth;

// One health check, possibly in two attempts (the route's service name, then "").
struct HealthCall {
  grpc::GenericStub* stub = nullptr;
  std::string service;
  std::string target;
  absl::Time deadline;
  std::function<void(HealthResult)> done;
  // One context per attempt: a context is never reused, and never destroyed inside its own callback
  // before the callback returns (the whole HealthCall is deleted at the end of the last one).
  grpc::ClientContext contexts[2];
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

std::string ServiceLabel(absl::string_view service) {
  return service.empty() ? "\"\" (whole server)" : std::string(service);
}

void StartAttempt(HealthCall* call, int attempt);

void OnAttemptDone(HealthCall* call, int attempt, const grpc::Status& status) {
  const absl::string_view service = attempt == 0 ? absl::string_view(call->service) : "";
  HealthResult result;
  result.health = maas::gateway::v1::NOT_SERVING;
  bool unknown_service = status.error_code() == grpc::StatusCode::NOT_FOUND;
  if (status.ok()) {
    std::string bytes;
    std::vector<grpc::Slice> slices;
    if (call->response.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    absl::StatusOr<ServingStatus> serving = DecodeHealthCheckResponse(bytes);
    if (!serving.ok()) {
      result.detail =
          absl::StrCat("backend ", call->target,
                       " sent an invalid health response: ", serving.status().message());
    } else if (*serving == ServingStatus::kServing) {
      result.health = maas::gateway::v1::SERVING;
    } else if (*serving == ServingStatus::kServiceUnknown) {
      unknown_service = true;
    } else {
      result.detail =
          absl::StrCat("backend ", call->target, " reports ",
                       *serving == ServingStatus::kNotServing ? "NOT_SERVING" : "UNKNOWN",
                       " for service ", ServiceLabel(service));
    }
  }
  if (unknown_service) {
    if (attempt == 0 && !call->service.empty()) {
      StartAttempt(call, 1);  // the backend does not report per-service health: ask for the server.
      return;
    }
    result.detail = absl::StrCat("backend ", call->target, " has no health status for service ",
                                 ServiceLabel(service));
  } else if (!status.ok()) {
    result.detail = absl::StrCat(
        "health check of backend ", call->target,
        " failed: ", absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())),
        ": ", status.error_message());
  }
  std::function<void(HealthResult)> done = std::move(call->done);
  delete call;
  done(std::move(result));
}

void StartAttempt(HealthCall* call, int attempt) {
  grpc::ClientContext& ctx = call->contexts[attempt];
  ctx.set_deadline(absl::ToChronoTime(call->deadline));
  const std::string bytes = EncodeHealthCheckRequest(attempt == 0 ? call->service : "");
  grpc::Slice slice(bytes);
  call->request = grpc::ByteBuffer(&slice, 1);
  call->response.Clear();
  call->stub->UnaryCall(
      &ctx, kHealthCheckMethod, grpc::StubOptions(), &call->request, &call->response,
      [call, attempt](grpc::Status status) { OnAttemptDone(call, attempt, status); });
}

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

void Backends::CheckHealth(std::size_t i, absl::Duration timeout,
                           std::function<void(HealthResult)> done) const {
  auto* call = new HealthCall;
  call->stub = routes_[i].stubs.front().get();
  call->service = route(i).service;
  call->target = route(i).target;
  call->deadline = absl::Now() + timeout;
  call->done = std::move(done);
  StartAttempt(call, 0);
}

void Backends::ResetConnectBackoff(std::size_t i) const {
  for (const std::shared_ptr<grpc::Channel>& channel : routes_[i].channels) {
    grpc::experimental::ChannelResetConnectionBackoff(channel.get());
  }
}

void Backends::CheckAllHealth(absl::Duration timeout,
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
    CheckHealth(i, timeout, [join, i](HealthResult result) {
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

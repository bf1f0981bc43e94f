// maas C++ client: a thin, typed wrapper over the generated stubs of the generative, discriminative
// and gateway services.
//
//   maas::client::ClientOptions options;
//   options.target = "127.0.0.1:50051";            // the gateway (or a service directly)
//   maas::client::Client client(options);
//   absl::StatusOr<maas::common::v1::ListModelsResponse> models = client.ListAllModels({});
//
// Every call gets a deadline of options.timeout from the moment it starts and, when
// options.auth_token is set, an "authorization: Bearer <token>" header (a token that is not
// printable ASCII fails every call with INVALID_ARGUMENT, see CheckAuthToken). Errors come back as
// absl::Status with the gRPC code and message unchanged. A Client is thread-safe (the stubs and the
// channel are).
#ifndef MAAS_CLIENTS_CPP_CLIENT_H_
#define MAAS_CLIENTS_CPP_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/status/grpc_status.h"
#include "maas/common/v1/common.pb.h"
#include "maas/discriminative/v1/discriminative.grpc.pb.h"
#include "maas/gateway/v1/gateway.grpc.pb.h"
#include "maas/generative/v1/generative.grpc.pb.h"

namespace maas::client {

struct ClientOptions {
  // gRPC target: "host:port", "dns:///host:port", "ipv4:a:p,b:q", ...
  std::string target = "127.0.0.1:50051";
  // Deadline of every call, measured from its start. Zero, negative or infinite: no deadline.
  absl::Duration timeout = absl::Seconds(30);
  // Bearer token sent as "authorization: Bearer <token>". Empty: no header. Visible ASCII only
  // (CheckAuthToken): otherwise every call fails with INVALID_ARGUMENT.
  std::string auth_token;
  // Largest message the client accepts, bytes (> 0). Sent messages are limited by the server.
  int max_message_bytes = 64 * 1024 * 1024;
  // Channel credentials (TLS: see common/tls). Null: plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Longest wait between two attempts to connect to a server that is down, 1 ms to 2^31 - 1 ms
  // (CheckReconnectBackoffMax: otherwise every call fails with INVALID_ARGUMENT). gRPC's own is
  // 120 s (first wait 1 s, then x1.6): after an outage of a minute calls kept failing at once with
  // UNAVAILABLE for 6-13 s after the server was back. 5 s bounds that to about 6 s (plus gRPC's 20%
  // jitter) whatever the outage, while a fleet of clients retries a recovering server at a fifth of
  // the rate of the gateway's 1 s cap (one process's few channels to its local backends). The
  // first wait is gRPC's 1 s, or this when shorter. Used by MakeChannel only.
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
};

// A channel to options.target (plaintext unless options.credentials) with round-robin load
// balancing, the receive size limit and the reconnect backoff (ChannelArgs).
std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& options);

// The channel arguments of MakeChannel: the service config, the receive size limit, and the
// reconnect backoff (GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS = min(1 s, reconnect_backoff_max),
// GRPC_ARG_MAX_RECONNECT_BACKOFF_MS = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS = reconnect_backoff_max,
// in ms) when CheckReconnectBackoffMax accepts it. The gRPC this builds against ignores the cap for
// attempts that fail after the TCP connect unless MIN is set too; gRPC core also reads MIN as the
// shortest time a connection attempt is given (default 20 s), so it is the cap, not the first wait.
grpc::ChannelArguments ChannelArgs(const ClientOptions& options);

// OK when `max` is a reconnect backoff cap gRPC can take: 1 ms to 2^31 - 1 ms (its int32
// milliseconds). Otherwise INVALID_ARGUMENT naming reconnect_backoff_max.
absl::Status CheckReconnectBackoffMax(absl::Duration max);

// OK when `token` can be sent as a bearer token: every byte printable ASCII (space to '~',
// 0x20-0x7E), what a gRPC header value allows (gRPC aborts the process on other bytes) and what the
// other clients send. Otherwise INVALID_ARGUMENT naming the first bad byte (never the token).
absl::Status CheckAuthToken(absl::string_view token);

// grpc::Status -> absl::Status: the project's one conversion (common/status/grpc_status.h).
using ::maas::FromGrpcStatus;

// A model of either type, as returned by Client::GetModel.
struct AnyModel {
  common::v1::ModelType type = common::v1::MODEL_TYPE_UNSPECIFIED;
  // Set when type == GENERATIVE.
  generative::v1::GetModelResponse generative;
  // Set when type == DISCRIMINATIVE.
  discriminative::v1::GetModelResponse discriminative;
};

class Client {
 public:
  // Connects with MakeChannel(options).
  explicit Client(const ClientOptions& options);
  // Uses an existing channel (e.g. an in-process one in tests); options.target is ignored.
  Client(std::shared_ptr<grpc::ChannelInterface> channel, const ClientOptions& options);

  // ---- gateway
  // One call of maas.gateway.v1.Gateway/ListModels: models of both types, one page of them when
  // request.page_size > 0 (then next_page_token, when not empty, asks for the next page with the
  // same name_prefix and all_versions); page_size 0 asks for the whole listing in one answer, which
  // a server refuses (RESOURCE_EXHAUSTED) when it is larger than its largest message: use
  // ListAllModels for everything. When the target is not a gateway (UNIMPLEMENTED), the answer of
  // the service it serves, each entry typed; an endpoint that serves both services answers a merged
  // listing when page_size is 0 and FAILED_PRECONDITION otherwise (a page of each cannot be one
  // page). A negative page_size is INVALID_ARGUMENT (nothing sent). A page_size > 0 without
  // max_page_bytes is sent with max_page_bytes = options.max_message_bytes, so that no page is
  // larger than the client receives (as in ListAllModels).
  absl::StatusOr<common::v1::ListModelsResponse> ListModels(
      const common::v1::ListModelsRequest& request);
  // The whole listing, however large: ListModels page after page of request.page_size entries
  // (0: kListPageSize) from request.page_token (empty: the start) until the server says none
  // follow, concatenated (models and unreadable_versions each in (name, version, type) order;
  // missing_backends each once, in the order first seen; next_page_token empty). Each page is one
  // call with its own deadline. A server older than paging answers everything at once. When the
  // target is not a gateway, each service it serves is paged and the listings merged. A negative
  // page_size is INVALID_ARGUMENT; a server that answers a token it was sent before is INTERNAL
  // (the listing would never end). The pages are at most request.max_page_bytes (0:
  // options.max_message_bytes, the largest message the client receives).
  absl::StatusOr<common::v1::ListModelsResponse> ListAllModels(
      const common::v1::ListModelsRequest& request);
  absl::StatusOr<gateway::v1::GetBackendsResponse> GetBackends();

  // ---- generative
  // Collects the whole Sample stream.
  absl::StatusOr<std::vector<generative::v1::SampleBatch>> Sample(
      const generative::v1::SampleRequest& request);
  // Calls on_batch for every batch as it arrives. A non-OK status from on_batch cancels the call
  // and is returned as is.
  absl::Status Sample(
      const generative::v1::SampleRequest& request,
      const std::function<absl::Status(const generative::v1::SampleBatch&)>& on_batch);
  absl::StatusOr<generative::v1::EstimateLogLikelihoodResponse> Estimate(
      const generative::v1::EstimateLogLikelihoodRequest& request);
  absl::StatusOr<generative::v1::CreateModelResponse> CreateModel(
      const generative::v1::CreateModelRequest& request);
  // FitModel: streams the config, then `rows` in chunks of at most chunk_rows (>= 1) rows and at
  // most max_chunk_bytes (>= 1) bytes of values (8 per value), but at least one row per chunk: a
  // wide matrix goes in fewer rows per message, so that no message passes the message size limit.
  absl::StatusOr<generative::v1::FitModelResponse> FitModel(
      const generative::v1::FitConfig& config, const common::v1::Matrix& rows,
      size_t chunk_rows = kDefaultFitChunkRows, size_t max_chunk_bytes = kDefaultFitChunkBytes);

  // ---- discriminative
  // Source of training examples: fills *example and returns true, or returns false at the end.
  using ExampleSource =
      std::function<absl::StatusOr<bool>(discriminative::v1::LabeledText* example)>;
  // Streams the config, then the examples in TextBatch messages of batch_size (>= 1) examples.
  absl::StatusOr<discriminative::v1::TrainResponse> Train(
      const discriminative::v1::TrainConfig& config, const ExampleSource& next_example,
      size_t batch_size = kDefaultTrainBatchSize);
  absl::StatusOr<discriminative::v1::TrainResponse> Train(
      const discriminative::v1::TrainConfig& config,
      const std::vector<discriminative::v1::LabeledText>& examples,
      size_t batch_size = kDefaultTrainBatchSize);
  // Any input iterator range over LabeledText.
  template <typename InputIt>
  absl::StatusOr<discriminative::v1::TrainResponse> Train(
      const discriminative::v1::TrainConfig& config, InputIt first, InputIt last,
      size_t batch_size = kDefaultTrainBatchSize) {
    return Train(
        config,
        [&first, &last](discriminative::v1::LabeledText* example) -> absl::StatusOr<bool> {
          if (first == last) return false;
          *example = *first;
          ++first;
          return true;
        },
        batch_size);
  }
  // Evaluate: streams the config (the model), then the labelled examples in TextBatch messages of
  // batch_size (>= 1) examples, as Train does: one batch is held at a time. A failing source
  // cancels the call and its error is returned.
  absl::StatusOr<discriminative::v1::EvaluateResponse> Evaluate(
      const discriminative::v1::EvaluateConfig& config, const ExampleSource& next_example,
      size_t batch_size = kDefaultEvaluateBatchSize);
  absl::StatusOr<discriminative::v1::EvaluateResponse> Evaluate(
      const discriminative::v1::EvaluateConfig& config,
      const std::vector<discriminative::v1::LabeledText>& examples,
      size_t batch_size = kDefaultEvaluateBatchSize);
  absl::StatusOr<discriminative::v1::ClassifyResponse> Classify(
      const discriminative::v1::ClassifyRequest& request);
  absl::StatusOr<discriminative::v1::CreateModelResponse> CreateModel(
      const discriminative::v1::CreateModelRequest& request);

  // ---- either type
  // Which service owns `name`. Asks the gateway's ListModels with the name as prefix, in pages of
  // kResolvePageSize until a page holds an entry of another name (a longer one: entries named
  // `name` sort first) or none follow; when the target is not a gateway (UNIMPLEMENTED), asks each
  // service's ListModels so. A model whose latest version cannot be read (listed in
  // unreadable_versions) counts. NOT_FOUND when no service has it, UNAVAILABLE when it is not
  // listed but a backend did not answer the gateway (missing_backends of any page asked for: it
  // may hold the model), FAILED_PRECONDITION when both have a model of that name (pass the type
  // explicitly).
  absl::StatusOr<common::v1::ModelType> ResolveModelType(const std::string& name);
  // GetModel on the service of `type`; MODEL_TYPE_UNSPECIFIED: ResolveModelType first.
  absl::StatusOr<AnyModel> GetModel(
      const common::v1::ModelRef& model,
      common::v1::ModelType type = common::v1::MODEL_TYPE_UNSPECIFIED);
  // DeleteModel on the service of `type`; MODEL_TYPE_UNSPECIFIED: ResolveModelType first.
  absl::StatusOr<common::v1::DeleteModelResponse> DeleteModel(
      const common::v1::DeleteModelRequest& request,
      common::v1::ModelType type = common::v1::MODEL_TYPE_UNSPECIFIED);

  static constexpr size_t kDefaultTrainBatchSize = 1000;
  static constexpr size_t kDefaultFitChunkRows = 4096;
  // 4 MiB less 64 KiB: a chunk's message stays under gRPC's default 4 MiB limit.
  static constexpr size_t kDefaultFitChunkBytes = (size_t{4} << 20) - (size_t{64} << 10);
  static constexpr size_t kDefaultEvaluateBatchSize = 1000;
  // Entries per page of ListAllModels when the request leaves page_size 0: the largest page the
  // servers give (they take larger values as 1000).
  static constexpr int32_t kListPageSize = 1000;
  // Entries per page of ResolveModelType's listing: the name's own entries (a model of each type,
  // unreadable versions) come first, so a small page usually answers, however many names begin
  // with the name.
  static constexpr int32_t kResolvePageSize = 8;

 private:
  // A context with the deadline and the authorization header; INVALID_ARGUMENT when
  // options.auth_token cannot be sent (CheckAuthToken).
  absl::StatusOr<std::unique_ptr<grpc::ClientContext>> NewContext() const;
  // One ListModels call, with its own context: to the gateway (MODEL_TYPE_UNSPECIFIED) or to the
  // service of `type`.
  absl::StatusOr<common::v1::ListModelsResponse> CallListModels(
      common::v1::ModelType type, const common::v1::ListModelsRequest& request);

  ClientOptions options_;
  std::shared_ptr<grpc::ChannelInterface> channel_;
  std::unique_ptr<generative::v1::GenerativeService::Stub> generative_;
  std::unique_ptr<discriminative::v1::DiscriminativeService::Stub> discriminative_;
  std::unique_ptr<gateway::v1::Gateway::Stub> gateway_;
};

}  // namespace maas::client

#endif  // MAAS_CLIENTS_CPP_CLIENT_H_

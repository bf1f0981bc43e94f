#include "clients/cpp/client.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/registry/list_page.h"
#include "common/status/status_macros.h"
#include "common/store/model_store.h"

namespace maas::client {
namespace {

namespace cv1 = ::maas::common::v1;
namespace dv1 = ::maas::discriminative::v1;
namespace gv1 = ::maas::generative::v1;

// The service config: round-robin balancing over the target's addresses.
constexpr char kServiceConfig[] = R"({"loadBalancingConfig": [{"round_robin": {}}]})";

// gRPC's first wait between connection attempts, kept unless reconnect_backoff_max is shorter.
constexpr int kGrpcInitialReconnectBackoffMs = 1000;

// The client stream of Train and Evaluate: `first` (the config), then the examples of
// `next_example` in TextBatch messages of batch_size (>= 1) examples, one batch held at a time;
// then the call's status. A failing source cancels the call (so the server neither stores a model
// nor reports metrics of partial data) and its error is returned.
template <typename Request>
absl::Status StreamExamples(grpc::ClientContext& context, grpc::ClientWriter<Request>& writer,
                            const Request& first, const Client::ExampleSource& next_example,
                            size_t batch_size) {
  // Writes fail only when the call is already over; Finish() then reports why.
  absl::Status source_status;
  bool stream_ok = writer.Write(first);
  Request message;
  dv1::TextBatch* batch = message.mutable_batch();
  while (stream_ok) {
    absl::StatusOr<bool> more = next_example(batch->add_examples());
    if (!more.ok()) {
      source_status = more.status();
      break;
    }
    if (!*more) batch->mutable_examples()->RemoveLast();
    const bool full = static_cast<size_t>(batch->examples_size()) >= batch_size;
    if ((full || !*more) && batch->examples_size() > 0) {
      stream_ok = writer.Write(message);
      batch->clear_examples();
    }
    if (!*more) break;
  }
  if (!source_status.ok()) {
    context.TryCancel();
    writer.Finish().IgnoreError();
    return source_status;
  }
  writer.WritesDone();
  return FromGrpcStatus(writer.Finish());
}

// A listing's page_size: >= 0 (0: no paging, or ListAllModels' default page).
absl::Status CheckPageSize(const cv1::ListModelsRequest& request) {
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ListModels: page_size must be >= 0 (0: no paging), got ", request.page_size()));
  }
  return absl::OkStatus();
}

// The type of every entry of a service's listing that does not say its own.
void SetType(cv1::ModelType type, cv1::ListModelsResponse* listed) {
  for (cv1::ModelInfo& info : *listed->mutable_models()) {
    if (info.type() == cv1::MODEL_TYPE_UNSPECIFIED) info.set_type(type);
  }
  for (cv1::UnreadableVersion& bad : *listed->mutable_unreadable_versions()) {
    if (bad.type() == cv1::MODEL_TYPE_UNSPECIFIED) bad.set_type(type);
  }
}

// The services' own listings as one, sorted as the gateway sorts: by name, version (with
// all_versions: otherwise an entry is a model), then type.
cv1::ListModelsResponse Merge(std::vector<cv1::ListModelsResponse> lists, bool all_versions) {
  cv1::ListModelsResponse merged;
  for (cv1::ListModelsResponse& listed : lists) {
    for (cv1::ModelInfo& info : *listed.mutable_models()) {
      *merged.add_models() = std::move(info);
    }
    for (cv1::UnreadableVersion& bad : *listed.mutable_unreadable_versions()) {
      *merged.add_unreadable_versions() = std::move(bad);
    }
  }
  // The listing order of list_page.h, which the gateway's merge and the services use.
  ::maas::registry::ListPaging order;
  order.latest_only = !all_versions;
  const auto by_key = [&order](const auto& a, const auto& b) {
    return order.KeyOf(a) < order.KeyOf(b);
  };
  std::stable_sort(merged.mutable_models()->begin(), merged.mutable_models()->end(), by_key);
  std::stable_sort(merged.mutable_unreadable_versions()->begin(),
                   merged.mutable_unreadable_versions()->end(), by_key);
  return merged;
}

// `request` as sent: a paged request (page_size > 0) that sets no max_page_bytes asks for pages of
// at most `max_message_bytes` (the client's receive limit; <= 0: none), which the client can
// receive.
cv1::ListModelsRequest WithPageBytes(cv1::ListModelsRequest request, int max_message_bytes) {
  if (request.page_size() > 0 && request.max_page_bytes() == 0 && max_message_bytes > 0) {
    request.set_max_page_bytes(max_message_bytes);
  }
  return request;
}

// Every page of a listing from request.page_token on: page(request) for each, the request's token
// moved to the answer's next_page_token until that is empty, or until last(page) is true of a page
// (when `last` is given). The pages concatenated (each starts after the previous one's last entry,
// so models and unreadable_versions stay sorted); missing_backends each once, in the order first
// seen.
absl::StatusOr<cv1::ListModelsResponse> AllPages(
    cv1::ListModelsRequest request,
    const std::function<absl::StatusOr<cv1::ListModelsResponse>(const cv1::ListModelsRequest&)>&
        page,
    const std::function<bool(const cv1::ListModelsResponse&)>& last = nullptr) {
  cv1::ListModelsResponse all;
  std::set<std::string> missing;
  std::set<std::string> sent = {request.page_token()};  // one answered again would start a loop
  for (;;) {
    MAAS_ASSIGN_OR_RETURN(cv1::ListModelsResponse listed, page(request));
    const bool stop = last != nullptr && last(listed);
    for (cv1::ModelInfo& info : *listed.mutable_models()) *all.add_models() = std::move(info);
    for (cv1::UnreadableVersion& bad : *listed.mutable_unreadable_versions()) {
      *all.add_unreadable_versions() = std::move(bad);
    }
    for (const std::string& backend : listed.missing_backends()) {
      if (missing.insert(backend).second) all.add_missing_backends(backend);
    }
    if (stop || listed.next_page_token().empty()) return all;
    if (!sent.insert(listed.next_page_token()).second) {
      return absl::InternalError(
          "ListModels: the server answered a page token it was sent before as the next one; the "
          "listing would never end");
    }
    request.set_page_token(listed.next_page_token());
  }
}

}  // namespace

absl::Status CheckReconnectBackoffMax(absl::Duration max) {
  if (max < absl::Milliseconds(1) ||
      max > absl::Milliseconds(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reconnect_backoff_max must be from 1ms to ",
        absl::FormatDuration(absl::Milliseconds(std::numeric_limits<int32_t>::max())),
        " (the longest wait between connection attempts), got ", absl::FormatDuration(max)));
  }
  return absl::OkStatus();
}

grpc::ChannelArguments ChannelArgs(const ClientOptions& options) {
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kServiceConfig);
  if (options.max_message_bytes > 0) args.SetMaxReceiveMessageSize(options.max_message_bytes);
  // An invalid cap fails every call in NewContext; the channel then keeps gRPC's backoff.
  if (CheckReconnectBackoffMax(options.reconnect_backoff_max).ok()) {
    const int max_ms = static_cast<int>(absl::ToInt64Milliseconds(options.reconnect_backoff_max));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                std::min(kGrpcInitialReconnectBackoffMs, max_ms));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
    // The gRPC this builds against (Debian's) kept its own backoff between attempts that failed
    // after the TCP connect unless this is set too (tests/clients/reconnect_test.cc, as the
    // gateway sets it); it is also the shortest time an attempt is given (default 20 s), so it is
    // the cap, not the first wait: a slow handshake keeps at least the cap.
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, max_ms);
  }
  return args;
}

std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& options) {
  return grpc::CreateCustomChannel(
      options.target,
      options.credentials != nullptr ? options.credentials : grpc::InsecureChannelCredentials(),
      ChannelArgs(options));
}

Client::Client(const ClientOptions& options) : Client(MakeChannel(options), options) {}

Client::Client(std::shared_ptr<grpc::ChannelInterface> channel, const ClientOptions& options)
    : options_(options),
      channel_(std::move(channel)),
      generative_(gv1::GenerativeService::NewStub(channel_)),
      discriminative_(dv1::DiscriminativeService::NewStub(channel_)),
      gateway_(gateway::v1::Gateway::NewStub(channel_)) {}

absl::Status CheckAuthToken(absl::string_view token) {
  for (const char byte : token) {
    const unsigned char c = static_cast<unsigned char>(byte);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("the auth token holds byte 0x", absl::Hex(c, absl::kZeroPad2),
                       c == '\n' ? " (a line break)" : "",
                       "; a bearer token is printable ASCII (space to '~', 0x20-0x7E) only"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<grpc::ClientContext>> Client::NewContext() const {
  if (!options_.auth_token.empty()) MAAS_RETURN_IF_ERROR(CheckAuthToken(options_.auth_token));
  MAAS_RETURN_IF_ERROR(CheckReconnectBackoffMax(options_.reconnect_backoff_max));
  auto context = std::make_unique<grpc::ClientContext>();
  if (options_.timeout > absl::ZeroDuration() && options_.timeout != absl::InfiniteDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }
  if (!options_.auth_token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.auth_token));
  }
  return context;
}

absl::StatusOr<cv1::ListModelsResponse> Client::CallListModels(
    cv1::ModelType type, const cv1::ListModelsRequest& request) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  cv1::ListModelsResponse response;
  grpc::Status status;
  if (type == cv1::GENERATIVE) {
    status = generative_->ListModels(context.get(), request, &response);
  } else if (type == cv1::DISCRIMINATIVE) {
    status = discriminative_->ListModels(context.get(), request, &response);
  } else {
    status = gateway_->ListModels(context.get(), request, &response);
  }
  MAAS_RETURN_IF_ERROR(FromGrpcStatus(status));
  return response;
}

absl::StatusOr<cv1::ListModelsResponse> Client::ListModels(const cv1::ListModelsRequest& given) {
  MAAS_RETURN_IF_ERROR(CheckPageSize(given));
  const cv1::ListModelsRequest request = WithPageBytes(given, options_.max_message_bytes);
  absl::StatusOr<cv1::ListModelsResponse> gateway =
      CallListModels(cv1::MODEL_TYPE_UNSPECIFIED, request);
  if (!absl::IsUnimplemented(gateway.status())) return gateway;
  // Not a gateway: a service answers for its own models (the other one is absent, UNIMPLEMENTED).
  std::vector<cv1::ListModelsResponse> own;
  for (const cv1::ModelType type : {cv1::GENERATIVE, cv1::DISCRIMINATIVE}) {
    absl::StatusOr<cv1::ListModelsResponse> listed = CallListModels(type, request);
    if (absl::IsUnimplemented(listed.status())) continue;
    MAAS_RETURN_IF_ERROR(listed.status());
    SetType(type, &*listed);
    own.push_back(*std::move(listed));
  }
  if (own.empty()) return gateway.status();
  if (own.size() == 1) return std::move(own[0]);
  if (request.page_size() != 0 || !request.page_token().empty()) {
    return absl::FailedPreconditionError(
        "the target serves both the generative and the discriminative service without a gateway, "
        "and a page of each cannot be merged into one page; list everything (ListAllModels, "
        "`maas models` without --page_size) or page through a gateway");
  }
  return Merge(std::move(own), request.all_versions());
}

absl::StatusOr<cv1::ListModelsResponse> Client::ListAllModels(
    const cv1::ListModelsRequest& request) {
  MAAS_RETURN_IF_ERROR(CheckPageSize(request));
  cv1::ListModelsRequest first = request;
  if (first.page_size() == 0) first.set_page_size(kListPageSize);
  first = WithPageBytes(std::move(first), options_.max_message_bytes);
  // type MODEL_TYPE_UNSPECIFIED: the gateway.
  const auto pages_of = [&](cv1::ModelType type) {
    return AllPages(first, [this, type](const cv1::ListModelsRequest& page) {
      return CallListModels(type, page);
    });
  };
  absl::StatusOr<cv1::ListModelsResponse> gateway = pages_of(cv1::MODEL_TYPE_UNSPECIFIED);
  if (!absl::IsUnimplemented(gateway.status())) return gateway;
  // Not a gateway: every page of each service it serves (the other one is UNIMPLEMENTED).
  std::vector<cv1::ListModelsResponse> own;
  for (const cv1::ModelType type : {cv1::GENERATIVE, cv1::DISCRIMINATIVE}) {
    absl::StatusOr<cv1::ListModelsResponse> listed = pages_of(type);
    if (absl::IsUnimplemented(listed.status())) continue;
    MAAS_RETURN_IF_ERROR(listed.status());
    SetType(type, &*listed);
    own.push_back(*std::move(listed));
  }
  if (own.empty()) return gateway.status();
  return Merge(std::move(own), request.all_versions());
}

absl::StatusOr<gateway::v1::GetBackendsResponse> Client::GetBackends() {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  gateway::v1::GetBackendsResponse response;
  MAAS_RETURN_IF_ERROR(FromGrpcStatus(
      gateway_->GetBackends(context.get(), gateway::v1::GetBackendsRequest(), &response)));
  return response;
}

absl::StatusOr<std::vector<gv1::SampleBatch>> Client::Sample(const gv1::SampleRequest& request) {
  std::vector<gv1::SampleBatch> batches;
  MAAS_RETURN_IF_ERROR(Sample(request, [&batches](const gv1::SampleBatch& batch) {
    batches.push_back(batch);
    return absl::OkStatus();
  }));
  return batches;
}

absl::Status Client::Sample(const gv1::SampleRequest& request,
                            const std::function<absl::Status(const gv1::SampleBatch&)>& on_batch) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  std::unique_ptr<grpc::ClientReader<gv1::SampleBatch>> reader =
      generative_->Sample(context.get(), request);
  gv1::SampleBatch batch;
  absl::Status callback_status;
  while (reader->Read(&batch)) {
    callback_status = on_batch(batch);
    if (!callback_status.ok()) {
      context->TryCancel();
      // Drain so Finish() does not block on unread messages.
      while (reader->Read(&batch)) {
      }
      break;
    }
  }
  const grpc::Status finish_status = reader->Finish();
  if (!callback_status.ok()) return callback_status;
  return FromGrpcStatus(finish_status);
}

absl::StatusOr<gv1::EstimateLogLikelihoodResponse> Client::Estimate(
    const gv1::EstimateLogLikelihoodRequest& request) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  gv1::EstimateLogLikelihoodResponse response;
  MAAS_RETURN_IF_ERROR(
      FromGrpcStatus(generative_->EstimateLogLikelihood(context.get(), request, &response)));
  return response;
}

absl::StatusOr<gv1::CreateModelResponse> Client::CreateModel(
    const gv1::CreateModelRequest& request) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  gv1::CreateModelResponse response;
  MAAS_RETURN_IF_ERROR(FromGrpcStatus(generative_->CreateModel(context.get(), request, &response)));
  return response;
}

absl::StatusOr<gv1::FitModelResponse> Client::FitModel(const gv1::FitConfig& config,
                                                       const cv1::Matrix& rows, size_t chunk_rows,
                                                       size_t max_chunk_bytes) {
  if (chunk_rows == 0) return absl::InvalidArgumentError("FitModel: chunk_rows must be >= 1");
  if (max_chunk_bytes == 0) {
    return absl::InvalidArgumentError("FitModel: max_chunk_bytes must be >= 1");
  }
  if (static_cast<uint64_t>(rows.values_size()) !=
      static_cast<uint64_t>(rows.rows()) * rows.cols()) {
    return absl::InvalidArgumentError("FitModel: rows.values does not hold rows x cols values");
  }
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  gv1::FitModelResponse response;
  std::unique_ptr<grpc::ClientWriter<gv1::FitModelRequest>> writer =
      generative_->FitModel(context.get(), &response);
  gv1::FitModelRequest message;
  *message.mutable_config() = config;
  bool stream_ok = writer->Write(message);
  const uint32_t cols = rows.cols();
  // Rows per message: chunk_rows, fewer when that many rows hold more than max_chunk_bytes of
  // values (a wide matrix), but at least one.
  const uint64_t row_bytes = uint64_t{sizeof(double)} * cols;
  const uint64_t rows_per_chunk =
      row_bytes == 0
          ? chunk_rows
          : std::max<uint64_t>(1, std::min<uint64_t>(chunk_rows, max_chunk_bytes / row_bytes));
  for (uint32_t start = 0; stream_ok && start < rows.rows();) {
    const uint32_t n =
        static_cast<uint32_t>(std::min<uint64_t>(rows_per_chunk, rows.rows() - start));
    message.Clear();
    cv1::Matrix* chunk = message.mutable_rows();
    chunk->set_rows(n);
    chunk->set_cols(cols);
    const auto begin = rows.values().begin() + static_cast<int64_t>(start) * cols;
    chunk->mutable_values()->Add(begin, begin + static_cast<int64_t>(n) * cols);
    stream_ok = writer->Write(message);
    start += n;
  }
  // Writes fail only when the call is already over; Finish() then reports why.
  writer->WritesDone();
  MAAS_RETURN_IF_ERROR(FromGrpcStatus(writer->Finish()));
  return response;
}

absl::StatusOr<dv1::TrainResponse> Client::Train(const dv1::TrainConfig& config,
                                                 const ExampleSource& next_example,
                                                 size_t batch_size) {
  if (batch_size == 0) {
    return absl::InvalidArgumentError("Train: batch_size must be >= 1");
  }
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  dv1::TrainResponse response;
  std::unique_ptr<grpc::ClientWriter<dv1::TrainRequest>> writer =
      discriminative_->Train(context.get(), &response);
  dv1::TrainRequest first;
  *first.mutable_config() = config;
  MAAS_RETURN_IF_ERROR(StreamExamples(*context, *writer, first, next_example, batch_size));
  return response;
}

absl::StatusOr<dv1::EvaluateResponse> Client::Evaluate(const dv1::EvaluateConfig& config,
                                                       const ExampleSource& next_example,
                                                       size_t batch_size) {
  if (batch_size == 0) {
    return absl::InvalidArgumentError("Evaluate: batch_size must be >= 1");
  }
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  dv1::EvaluateResponse response;
  std::unique_ptr<grpc::ClientWriter<dv1::EvaluateRequest>> writer =
      discriminative_->Evaluate(context.get(), &response);
  dv1::EvaluateRequest first;
  *first.mutable_config() = config;
  MAAS_RETURN_IF_ERROR(StreamExamples(*context, *writer, first, next_example, batch_size));
  return response;
}

absl::StatusOr<dv1::EvaluateResponse> Client::Evaluate(
    const dv1::EvaluateConfig& config, const std::vector<dv1::LabeledText>& examples,
    size_t batch_size) {
  auto it = examples.begin();
  return Evaluate(
      config,
      [&it, &examples](dv1::LabeledText* example) -> absl::StatusOr<bool> {
        if (it == examples.end()) return false;
        *example = *it;
        ++it;
        return true;
      },
      batch_size);
}

absl::StatusOr<dv1::TrainResponse> Client::Train(const dv1::TrainConfig& config,
                                                 const std::vector<dv1::LabeledText>& examples,
                                                 size_t batch_size) {
  return Train(config, examples.begin(), examples.end(), batch_size);
}

absl::StatusOr<dv1::ClassifyResponse> Client::Classify(const dv1::ClassifyRequest& request) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  dv1::ClassifyResponse response;
  MAAS_RETURN_IF_ERROR(
      FromGrpcStatus(discriminative_->Classify(context.get(), request, &response)));
  return response;
}

absl::StatusOr<dv1::CreateModelResponse> Client::CreateModel(
    const dv1::CreateModelRequest& request) {
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  dv1::CreateModelResponse response;
  MAAS_RETURN_IF_ERROR(
      FromGrpcStatus(discriminative_->CreateModel(context.get(), request, &response)));
  return response;
}

absl::StatusOr<cv1::ModelType> Client::ResolveModelType(const std::string& name) {
  // A name no service can hold was answered NOT_FOUND ("no model named ..."), where the services,
  // the other clients and `--type` answer INVALID_ARGUMENT stating the rule.
  MAAS_RETURN_IF_ERROR(store::ValidateModelName(name));
  // The listing of name_prefix = name is ordered by name, and `name` sorts before every longer name
  // it begins: the entries named `name` are the first ones, so the pages after one that holds
  // another name have none of them. Small pages, read until then, instead of every model whose
  // name begins with `name`.
  cv1::ListModelsRequest request;
  request.set_name_prefix(name);
  request.set_page_size(kResolvePageSize);
  request = WithPageBytes(std::move(request), options_.max_message_bytes);
  const auto past_name = [&name](const cv1::ListModelsResponse& page) {
    for (const cv1::ModelInfo& info : page.models()) {
      if (info.name() != name) return true;
    }
    for (const cv1::UnreadableVersion& bad : page.unreadable_versions()) {
      if (bad.name() != name) return true;
    }
    return false;
  };
  // type MODEL_TYPE_UNSPECIFIED: the gateway.
  const auto pages_of = [&](cv1::ModelType type) {
    return AllPages(
        request,
        [this, type](const cv1::ListModelsRequest& page) { return CallListModels(type, page); },
        past_name);
  };
  bool generative = false;
  bool discriminative = false;
  // Backends the gateway could not ask ("<service>: <code>: <reason>"): their models are unknown.
  std::vector<std::string> missing_backends;
  const auto scan = [&](const cv1::ListModelsResponse& response) {
    const auto found = [&](cv1::ModelType type) {
      if (type == cv1::GENERATIVE) generative = true;
      if (type == cv1::DISCRIMINATIVE) discriminative = true;
    };
    for (const cv1::ModelInfo& info : response.models()) {
      if (info.name() == name) found(info.type());
    }
    // A model whose latest version cannot be read is listed only here; it still exists (GetModel
    // answers why it cannot be read, DeleteModel removes it).
    for (const cv1::UnreadableVersion& bad : response.unreadable_versions()) {
      if (bad.name() == name) found(bad.type());
    }
    missing_backends.insert(missing_backends.end(), response.missing_backends().begin(),
                            response.missing_backends().end());
  };

  absl::StatusOr<cv1::ListModelsResponse> gateway = pages_of(cv1::MODEL_TYPE_UNSPECIFIED);
  if (!absl::IsUnimplemented(gateway.status())) {
    MAAS_RETURN_IF_ERROR(gateway.status());
    scan(*gateway);
  } else {
    // Not a gateway: each service it serves (the other one is UNIMPLEMENTED).
    bool answered = false;
    for (const cv1::ModelType type : {cv1::GENERATIVE, cv1::DISCRIMINATIVE}) {
      absl::StatusOr<cv1::ListModelsResponse> listed = pages_of(type);
      if (absl::IsUnimplemented(listed.status())) continue;
      MAAS_RETURN_IF_ERROR(listed.status());
      SetType(type, &*listed);
      scan(*listed);
      answered = true;
    }
    if (!answered) return gateway.status();
  }
  if (generative && discriminative) {
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name,
                     "' exists as both a generative and a discriminative model; give the type "
                     "explicitly (--type generative|discriminative)"));
  }
  // The backend that did not answer may hold the name too: a delete must not pick the other one.
  if (!missing_backends.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot tell which service holds model '", name,
                     "': a backend did not answer (", absl::StrJoin(missing_backends, "; "),
                     "); retry later, or give the type explicitly (--type "
                     "generative|discriminative)"));
  }
  if (generative) return cv1::GENERATIVE;
  if (discriminative) return cv1::DISCRIMINATIVE;
  return absl::NotFoundError(absl::StrCat("no model named '", name, "'"));
}

absl::StatusOr<AnyModel> Client::GetModel(const cv1::ModelRef& model, cv1::ModelType type) {
  if (type == cv1::MODEL_TYPE_UNSPECIFIED) {
    MAAS_ASSIGN_OR_RETURN(type, ResolveModelType(model.name()));
  }
  AnyModel result;
  result.type = type;
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  if (type == cv1::GENERATIVE) {
    gv1::GetModelRequest request;
    *request.mutable_model() = model;
    MAAS_RETURN_IF_ERROR(
        FromGrpcStatus(generative_->GetModel(context.get(), request, &result.generative)));
  } else if (type == cv1::DISCRIMINATIVE) {
    dv1::GetModelRequest request;
    *request.mutable_model() = model;
    MAAS_RETURN_IF_ERROR(
        FromGrpcStatus(discriminative_->GetModel(context.get(), request, &result.discriminative)));
  } else {
    return absl::InvalidArgumentError("GetModel: unknown model type");
  }
  return result;
}

absl::StatusOr<cv1::DeleteModelResponse> Client::DeleteModel(const cv1::DeleteModelRequest& request,
                                                             cv1::ModelType type) {
  if (type == cv1::MODEL_TYPE_UNSPECIFIED) {
    MAAS_ASSIGN_OR_RETURN(type, ResolveModelType(request.name()));
  }
  MAAS_ASSIGN_OR_RETURN(auto context, NewContext());
  cv1::DeleteModelResponse response;
  if (type == cv1::GENERATIVE) {
    MAAS_RETURN_IF_ERROR(
        FromGrpcStatus(generative_->DeleteModel(context.get(), request, &response)));
  } else if (type == cv1::DISCRIMINATIVE) {
    MAAS_RETURN_IF_ERROR(
        FromGrpcStatus(discriminative_->DeleteModel(context.get(), request, &response)));
  } else {
    return absl::InvalidArgumentError("DeleteModel: unknown model type");
  }
  return response;
}

}  // namespace maas::client

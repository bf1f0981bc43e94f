// Reusable gRPC callback reactors for thin service adapters: every RPC shape of both services maps
// onto one of these, so adapters stay a line or two per method and the status conversion happens in
// one place.
//
//   grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer*
//   req, grpc::ByteBuffer* resp) override {
//     return adapter::Unary<v1::GetModelRequest, v1::GetModelResponse>(
//         *dispatcher_, ctx, req, resp, absl::OkStatus(),
//         [this](const v1::GetModelRequest& r, const adapter::CallScope& s) {
//           return core_->GetModel(r); });
//   }
//
// Execution (DESIGN "Shared server kit"): gRPC's callback threads only parse, hand off and reply.
// Every call is admitted by the Dispatcher (else RESOURCE_EXHAUSTED with a retry hint, at once)
// and its real work runs on the worker pool: a unary call's function, a server stream's start and
// each next message, each client-stream message and the final Finish(), each bidi response. Work
// receives a CallScope: the pool as an Executor (for ParallelFor) and a StopToken that reports
// DEADLINE_EXCEEDED / CANCELLED once the call's deadline passed or the client gave up; the work is
// not started at all when that is already the case. Lane::kInline (cheap metadata calls such as
// ListModels) runs on the callback thread without admission, so it is never starved by a full pool.
// Lane::kCaller runs an admitted unary call on the callback thread: only for work bounded to a few
// microseconds that can neither load nor wait (e.g. one short text against a loaded model), where
// the hand-off to a worker and back would cost the process more CPU than the work; a unary call
// may choose its lane per request (see Unary).
//
// Messages arrive as bytes (the services register their methods as raw callback methods) and are
// parsed here: an unparseable message, e.g. invalid UTF-8 in a string field, ends the call with
// INVALID_ARGUMENT naming the message, and a stream's session is dropped without storing anything.
// (With generated typed methods gRPC 1.51 reports such a message in a client stream exactly like
// the client's half-close, OnReadDone(false), so a stream would silently end early.)
#ifndef MAAS_COMMON_ADAPTER_REACTORS_H_
#define MAAS_COMMON_ADAPTER_REACTORS_H_

#include <grpc/support/time.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/adapter/call_annotations.h"
#include "common/adapter/call_deadline.h"
#include "common/adapter/dispatcher.h"
#include "common/adapter/grpc_order.h"
#include "common/adapter/stream_budget.h"
#include "common/exec/executor.h"
#include "common/exec/stop_token.h"
#include "common/exec/worker_pool.h"
#include "common/status/grpc_status.h"

namespace maas::adapter {

// What a call's work receives.
struct CallScope {
  exec::Executor& executor;
  const exec::StopToken& stop;
};

// Where a call's work runs.
enum class Lane {
  kPool,    // admitted, on the worker pool (default)
  kInline,  // on the gRPC callback thread, not admitted: only for cheap calls (ListModels)
  kCaller,  // admitted like kPool, run on the gRPC callback thread with an inline executor: only
            // for work bounded to microseconds that never loads a model or waits
};

// A StopToken for the call of `context`: DEADLINE_EXCEEDED once its deadline passed, CANCELLED
// once the client cancelled (or the server shut it down). Valid until the call's OnDone.
inline exec::StopToken StopTokenFor(grpc::CallbackServerContext* context) {
  return exec::StopToken([context]() -> absl::Status {
    if (CallDeadline(*context) <= absl::Now()) {
      return absl::DeadlineExceededError(
          "the call's deadline passed before its work finished; nothing was committed");
    }
    if (context->IsCancelled()) {
      return absl::CancelledError(
          "the call was cancelled before its work finished; nothing was committed");
    }
    return absl::OkStatus();
  });
}

// How the reactors read a request type off the wire: protobuf's parse (which clears `message`
// first and consumes `bytes`). A service may specialize it for its own request types to read some
// fields differently (the discriminative service reads texts as bytes: text_wire.h); the
// specialization must be declared before the service's adapter uses the reactors, and only that
// adapter may use the type's reactors.
template <class Msg>
struct RequestReader {
  static bool Parse(grpc::ByteBuffer* bytes, Msg* message) {
    return grpc::SerializationTraits<Msg>::Deserialize(bytes, message).ok();
  }
};

// What a caller can do instead when a unary method's answer is above --max_message_bytes (the
// refusal says it, then "or raise --max_message_bytes"): passed to Unary by the method.
struct TooLargeAdvice {
  // Data methods (Classify, Vectorize, Sample, ...): the default.
  static constexpr absl::string_view kAskForLess =
      "ask for less in one call (fewer texts or rows, the compact form)";
  // ListModels (both services) without page_size: every model's labels and description at once.
  static constexpr absl::string_view kListFewerModels =
      "page through the list: set page_size (1..1000) and send each answer's next_page_token back "
      "as page_token (the clients' full listings do), or set name_prefix";
};

namespace internal {

// The status of a call whose stream write failed: gRPC says only that the call is gone, which
// happens when the client cancels or stops reading, and also when the server's shutdown grace
// ends the calls still in flight.
inline constexpr char kStreamWriteFailed[] =
    "the call ended while its stream was being written: the client cancelled it or stopped "
    "reading, or the server shut down (--shutdown_grace_seconds)";

// CallGone of a call whose stream write failed.
inline absl::Status StreamWriteFailed(const grpc::ServerContextBase& context, absl::Time started) {
  return CallGone(context, started, kStreamWriteFailed,
                  "the call's deadline passed while its stream was being written");
}

// Parses `bytes` into `message`. INVALID_ARGUMENT naming `what` and the message type otherwise.
template <class Msg>
absl::Status Parse(const grpc::ByteBuffer& bytes, Msg* message, const std::string& what) {
  grpc::ByteBuffer copy(bytes);  // the reader consumes its buffer
  if (RequestReader<Msg>::Parse(&copy, message)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " is not a valid ", Msg::descriptor()->full_name(),
      " message (corrupt bytes, an unknown wire type, or invalid UTF-8 in a string field: string "
      "fields must be UTF-8)"));
}

// A stream's registration with the dispatcher's StreamWatchdog (none: plain reads): each read of
// the client's next message starts through Read() and its completion calls Progress(); a stream
// that waited too long is ended by `on_idle` (on the watchdog's thread; it finishes the call with
// Status()). Unregisters when destroyed (the reactor's OnDone, while the stream still exists).
class IdleWatch {
 public:
  IdleWatch(StreamWatchdog* watchdog, std::function<void()> on_idle)
      : watchdog_(watchdog),
        watch_(watchdog != nullptr ? watchdog->Register(std::move(on_idle)) : nullptr) {}
  ~IdleWatch() {
    if (watchdog_ != nullptr) watchdog_->Unregister(watch_);
  }
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;
  template <class StartRead>
  void Read(StartRead&& start_read) {
    if (watch_ != nullptr) {
      watch_->Read(std::forward<StartRead>(start_read));
    } else {
      std::forward<StartRead>(start_read)();
    }
  }
  // False when the watchdog ended the call: the reactor lets go of what it holds, nothing more.
  bool Progress() { return watch_ == nullptr || watch_->Progress(); }
  // The status of a stream the watchdog ends.
  absl::Status Status() const {
    return absl::CancelledError(absl::StrCat(
        "no complete message of the stream arrived for more than ",
        absl::FormatDuration(watchdog_->idle_timeout()),
        " (the server's --stream_idle_timeout_seconds), and it was ended: a silent stream holds "
        "one of the server's call slots; send each next message within that time (a message "
        "that takes longer to upload, a large one on a slow link, needs a larger timeout or "
        "smaller messages); nothing was stored"));
  }

 private:
  StreamWatchdog* const watchdog_;
  const std::shared_ptr<StreamWatchdog::Watch> watch_;
};

// Parses the request of a unary or server-streaming call. gRPC hands the handler a buffer without
// data when no message arrived: the client cancelled (or its deadline passed) before sending it,
// or half-closed without one. Those are reported as what they are (CANCELLED / DEADLINE_EXCEEDED,
// or INVALID_ARGUMENT saying the message is missing), not as an unreadable message.
template <class Msg>
absl::Status ParseRequest(const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
                          Msg* message) {
  if (!bytes.Valid()) {
    if (context.IsCancelled()) {
      return CallGone(context, absl::Now(), "cancelled before its request message arrived",
                      "the call's deadline passed before its request message arrived");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the call carried no request message (the client half-closed without one, or went away "
        "before sending it): the method takes exactly one ",
        Msg::descriptor()->full_name(), " message"));
  }
  return Parse(bytes, message, "the request");
}

// Serializes a response into `out`. RESOURCE_EXHAUSTED when it takes more than `max_bytes` (> 0):
// gRPC would fail the send with only "Sent message larger than max". `advice` (what the caller can
// ask for instead; the method's, see TooLargeAdvice) goes before "or raise --max_message_bytes".
template <class Msg>
absl::Status Serialize(const Msg& message, grpc::ByteBuffer* out, int64_t max_bytes,
                       absl::string_view advice = TooLargeAdvice::kAskForLess) {
  out->Clear();  // the serializer needs an empty buffer (a stream reuses its buffer)
  bool own = false;
  grpc::Status status = grpc::SerializationTraits<Msg>::Serialize(message, out, &own);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot serialize the response: ", status.error_message()));
  }
  if (max_bytes > 0 && out->Length() > static_cast<size_t>(max_bytes)) {
    const size_t size = out->Length();
    out->Clear();
    return absl::ResourceExhaustedError(absl::StrCat(
        "the response would take ", size, " bytes, above this server's largest message of ",
        max_bytes, " bytes (--max_message_bytes): ", advice,
        ", or raise --max_message_bytes on the server and the client"));
  }
  return absl::OkStatus();
}

// The status to end a refused call with; adds the retry hint to the trailers.
inline grpc::Status Refuse(grpc::CallbackServerContext* context, const Dispatcher& dispatcher,
                           const absl::Status& status) {
  if (absl::IsResourceExhausted(status)) {
    context->AddTrailingMetadata(kRetryAfterMetadataKey,
                                 std::to_string(dispatcher.retry_after_ms()));
  }
  return ToGrpcStatus(status);
}

// Sends the call's model as trailing metadata (read by the server kit's call log). Call right
// before Finish.
inline void Annotate(grpc::CallbackServerContext* context, const ModelAnnotation& model) {
  if (model.name.empty()) return;
  context->AddTrailingMetadata(kModelNameKey, model.name);
  if (model.version > 0) {
    context->AddTrailingMetadata(kModelVersionKey, std::to_string(model.version));
  }
  if (model.documents > 0) {
    context->AddTrailingMetadata(kDocumentsKey, std::to_string(model.documents));
  }
  if (model.samples > 0) context->AddTrailingMetadata(kSamplesKey, std::to_string(model.samples));
}

// Session::Finish(executor, stop) when the session takes them, else Finish().
template <class Session>
auto FinishSession(Session& session, const CallScope& scope)
    -> decltype(session.Finish(scope.executor, scope.stop)) {
  return session.Finish(scope.executor, scope.stop);
}
template <class Session, class... Ignored>
auto FinishSession(Session& session, const CallScope&, Ignored...) -> decltype(session.Finish()) {
  return session.Finish();
}

// Session::Add(request, stop) when the session takes the call's StopToken (to stop within a
// long message), else Add(request).
template <class Session, class Req>
auto AddToSession(Session& session, const Req& request, const exec::StopToken& stop)
    -> decltype(session.Add(request, stop)) {
  return session.Add(request, stop);
}
template <class Session, class Req, class... Ignored>
auto AddToSession(Session& session, const Req& request, const exec::StopToken&, Ignored...)
    -> decltype(session.Add(request)) {
  return session.Add(request);
}

// Whether a client stream's Session stores nothing in Finish (`static constexpr bool
// kFinishReadsOnly = true`, e.g. an evaluation): see ClientStreamReactor.
template <class Session, class = void>
struct FinishReadsOnly : std::false_type {};
template <class Session>
struct FinishReadsOnly<Session, std::void_t<decltype(Session::kFinishReadsOnly)>>
    : std::bool_constant<Session::kFinishReadsOnly> {};

// Source::Next(msg, executor, stop) when the source takes them, else Next(msg); bool or
// StatusOr<bool> (false = the stream is over).
template <class Source, class Msg>
auto NextOf(Source& source, Msg* message, const CallScope& scope)
    -> decltype(source.Next(message, scope.executor, scope.stop)) {
  return source.Next(message, scope.executor, scope.stop);
}
template <class Source, class Msg, class... Ignored>
auto NextOf(Source& source, Msg* message, const CallScope&, Ignored...)
    -> decltype(source.Next(message)) {
  return source.Next(message);
}
inline absl::StatusOr<bool> AsStatusOrBool(bool more) { return more; }
inline absl::StatusOr<bool> AsStatusOrBool(absl::StatusOr<bool> more) { return more; }

// Whether a server stream's Source serialises its messages itself, later:
// `void SerializePending(grpc::ByteBuffer* out)` (see ServerStreamReactor).
template <class Source, class = void>
struct SerializesLater : std::false_type {};
template <class Source>
struct SerializesLater<Source, std::void_t<decltype(std::declval<Source&>().SerializePending(
                                   std::declval<grpc::ByteBuffer*>()))>> : std::true_type {};

}  // namespace internal

// A unary call: parses the request, admits the call, runs fn(request, scope) (returning
// absl::StatusOr<Resp>) on the pool and finishes with its result. With a non-OK `admission` (e.g.
// a failed token check) the call ends with it and nothing runs. `lane` is a Lane, or a function
// `Lane(const Req&)` that picks it for each parsed request. `too_large` is what the refusal of an
// answer above --max_message_bytes advises (a TooLargeAdvice constant: it must outlive the call).
template <class Req, class Resp, class Fn, class LaneChoice = Lane>
grpc::ServerUnaryReactor* Unary(Dispatcher& dispatcher, grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* request_bytes,
                                grpc::ByteBuffer* response_bytes, const absl::Status& admission,
                                Fn fn, LaneChoice choose_lane = Lane::kPool,
                                absl::string_view too_large = TooLargeAdvice::kAskForLess) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!admission.ok()) {
    reactor->Finish(ToGrpcStatus(admission));
    return reactor;
  }
  auto request = std::make_shared<Req>();
  if (absl::Status parsed = internal::ParseRequest(*context, *request_bytes, request.get());
      !parsed.ok()) {
    reactor->Finish(ToGrpcStatus(parsed));
    return reactor;
  }
  Lane lane;
  if constexpr (std::is_invocable_r_v<Lane, LaneChoice&, const Req&>) {
    lane = choose_lane(static_cast<const Req&>(*request));
  } else {
    lane = choose_lane;
  }
  auto work = [context, reactor, request, response_bytes, fn = std::move(fn), too_large,
               max_bytes = dispatcher.max_message_bytes()](exec::Executor& executor) {
    const exec::StopToken stop = StopTokenFor(context);
    ModelAnnotation model;
    model.Update(*request);
    absl::Status status = stop.Check();
    if (status.ok()) {
      absl::StatusOr<Resp> result = fn(*request, CallScope{executor, stop});
      if (result.ok()) {
        model.Update(*result);
        model.CountOutput(*result);
      }
      status = result.ok() ? internal::Serialize(*result, response_bytes, max_bytes, too_large)
                           : result.status();
    }
    internal::Annotate(context, model);
    reactor->Finish(ToGrpcStatus(status));
  };
  if (lane == Lane::kInline) {
    exec::InlineExecutor inline_executor;
    work(inline_executor);
    return reactor;
  }
  absl::StatusOr<Dispatcher::Ticket> ticket = dispatcher.Admit();
  if (!ticket.ok()) {
    reactor->Finish(internal::Refuse(context, dispatcher, ticket.status()));
    return reactor;
  }
  if (lane == Lane::kCaller) {
    exec::InlineExecutor inline_executor;  // ParallelFor never waits for pool workers here
    work(inline_executor);
    return reactor;  // the ticket is released now: the work is done
  }
  dispatcher.Run([work = std::move(work), ticket = *std::move(ticket), &dispatcher]() mutable {
    work(dispatcher.executor());
    ticket.reset();
  });
  return reactor;
}

// A cap on the total bytes of a client stream's messages: beyond it the call ends with
// RESOURCE_EXHAUSTED naming `flag` and nothing is stored. max_bytes <= 0 = no cap. With `budget`
// (not owned, outlives the server) the stream's messages also count against that server-wide
// total from their arrival until the call ends (its data dropped, or stored and released): a
// message that would take the total above the budget's cap ends the call the same way, naming
// the budget's flag.
struct StreamLimit {
  int64_t max_bytes = 0;
  const char* flag = "";
  StreamBudget* budget = nullptr;
};

// A client stream folded by a session: Session has `absl::Status Add(const Req&)` (or
// `Add(const Req&, const exec::StopToken&)`) and
// `absl::StatusOr<Resp> Finish(exec::Executor&, const exec::StopToken&)` (or `Finish()`). Each
// Add and the Finish run on the pool, one at a time: the next message is read only after the
// previous one was added. The first Add error, an unparseable message or a cut-off stream ends the
// call and the session is dropped without Finish (nothing is stored); a session that declares
// kFinishReadsOnly (internal::FinishReadsOnly) may be finished on a cut-off stream, whose answer
// then reaches nobody, and its response headers go out with its answer. `dispatcher` is where the
// Adds and the Finish run (the admitting dispatcher's pool, or a pool of its own).
template <class Req, class Resp, class Session>
class ClientStreamReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  ClientStreamReactor(Dispatcher& dispatcher, grpc::CallbackServerContext* context,
                      Dispatcher::Ticket ticket, std::unique_ptr<Session> session,
                      grpc::ByteBuffer* response, StreamLimit limit)
      : dispatcher_(dispatcher),
        context_(context),
        ticket_(std::move(ticket)),
        session_(std::move(session)),
        response_(response),
        limit_(limit),
        stop_(StopTokenFor(context)),
        idle_(dispatcher.watchdog(), [this] { EndIdle(); }) {
    idle_.Read([this] { StartGrpcOperation(this, [&] { StartRead(&buffer_); }); });
  }

  void OnReadDone(bool ok) override {
    const GrpcReaction reaction(this);
    if (!idle_.Progress()) {
      Drop();  // the watchdog ended the call
      return;
    }
    if (!ok) {
      if (context_->IsCancelled()) {
        Cut();
        return;
      }
      // A failed read is the client's half-close, or the end of a call gRPC cut off (the client
      // cancelled, its deadline passed, a message above --max_message_bytes): gRPC says which
      // only later, and a cut-off stream must store nothing. A send behind the read settles it:
      // gRPC has closed a cut-off call's stream before it reports the failed read, so the
      // response headers cannot go out on it.
      // A session that stores nothing skips that send: its answer is computed at once and its
      // headers go out with it, so that a server that dies while computing it has sent nothing,
      // and a retry policy (the gateway's, a mesh's), which commits on the response headers, can
      // still retry the call elsewhere. On a cut-off stream the answer reaches nobody.
      if constexpr (internal::FinishReadsOnly<Session>::value) {
        FinishOnPool();
      } else {
        StartGrpcOperation(this, [&] { StartSendInitialMetadata(); });
      }
      return;
    }
    ++index_;
    total_bytes_ += static_cast<int64_t>(buffer_.Length());
    if (limit_.max_bytes > 0 && total_bytes_ > limit_.max_bytes) {
      End(absl::ResourceExhaustedError(absl::StrCat(
          "the stream's messages exceed ", limit_.max_bytes, " bytes, the server's ", limit_.flag,
          "; nothing was stored: send less data (a subsample) or raise ", limit_.flag)));
      return;
    }
    if (limit_.budget != nullptr) {
      const int64_t bytes = static_cast<int64_t>(buffer_.Length());
      if (!limit_.budget->TryAdd(bytes)) {
        const int64_t others = limit_.budget->held() - budget_held_;
        End(absl::ResourceExhaustedError(absl::StrCat(
            "the server holds ", others, " bytes of other calls' streams; with this stream's ",
            total_bytes_, " bytes that passes ", limit_.budget->max_bytes(), " bytes, its ",
            limit_.budget->flag(),
            "; nothing was stored: retry when other calls have finished, or raise ",
            limit_.budget->flag())));
        return;
      }
      budget_held_ += bytes;
    }
    absl::Status parsed =
        internal::Parse(buffer_, &request_, absl::StrCat("message ", index_, " of the stream"));
    if (!parsed.ok()) {
      End(absl::InvalidArgumentError(
          absl::StrCat(parsed.message(), "; the stream was dropped and nothing was stored")));
      return;
    }
    if (index_ == 1) model_.Update(request_);
    dispatcher_.Run([this] {
      absl::Status status = stop_.Check();
      if (status.ok()) status = internal::AddToSession(*session_, request_, stop_);
      if (!status.ok()) {
        End(status);
        return;
      }
      idle_.Read([this] { StartGrpcOperation(this, [&] { StartRead(&buffer_); }); });
    });
  }
  void OnSendInitialMetadataDone(bool ok) override {
    const GrpcReaction reaction(this);
    if (!ok) {
      Cut();
      return;
    }
    FinishOnPool();  // the client half-closed: every message arrived
  }
  void OnDone() override {
    GrpcDone(this);
    delete this;
  }

 private:
  // The session's Finish on the pool, then the answer.
  void FinishOnPool() {
    dispatcher_.Run([this] {
      const CallScope scope{dispatcher_.executor(), stop_};
      absl::Status status = stop_.Check();
      if (status.ok()) {
        absl::StatusOr<Resp> result = internal::FinishSession(*session_, scope);
        if (result.ok()) model_.Update(*result);
        status = result.ok()
                     ? internal::Serialize(*result, response_, dispatcher_.max_message_bytes())
                     : result.status();
      }
      if (internal::FinishReadsOnly<Session>::value && context_->IsCancelled()) {
        Cut();  // the call's log says why it ended, not the answer nobody received
        return;
      }
      End(status);
    });
  }

  // Ends a stream gRPC cut off: it is not a complete one, so nothing is stored.
  void Cut() {
    End(CallGone(*context_, started_,
                 "the stream ended before it was complete (the client cancelled it, or gRPC "
                 "refused one of its messages, e.g. one above --max_message_bytes); nothing was "
                 "stored",
                 "the call's deadline passed before the stream was complete; nothing was stored"));
  }

  // Ends the call; every ending goes through here or EndIdle, once (OnDone follows Finish).
  void End(const absl::Status& status) {
    Drop();
    internal::Annotate(context_, model_);
    GrpcOperation(this);
    Finish(ToGrpcStatus(status));
  }
  // The watchdog's ending: a read is outstanding, so no Add runs; its completion drops the data.
  void EndIdle() {
    internal::Annotate(context_, model_);
    GrpcOperation(this);
    Finish(ToGrpcStatus(idle_.Status()));
  }
  // Frees the accumulated data now, not when the client goes away.
  void Drop() {
    session_.reset();
    if (limit_.budget != nullptr) limit_.budget->Release(budget_held_);
    budget_held_ = 0;
  }

  Dispatcher& dispatcher_;
  grpc::CallbackServerContext* context_;
  Dispatcher::Ticket ticket_;
  std::unique_ptr<Session> session_;
  grpc::ByteBuffer* response_;
  const StreamLimit limit_;
  const exec::StopToken stop_;
  const absl::Time started_ = absl::Now();  // for CallGone
  ModelAnnotation model_;
  grpc::ByteBuffer buffer_;
  Req request_;
  int64_t index_ = 0;
  int64_t total_bytes_ = 0;
  int64_t budget_held_ = 0;  // of limit_.budget, taken by this stream's messages
  internal::IdleWatch idle_;
};

// Starts a client stream folded by `session`, capped by `limit`. With a non-OK `admission` (e.g. a
// failed token check) or a full server, the call ends at once and nothing is read. `dispatcher`
// admits the call; its work (each Add, then Finish) runs on `work`'s pool when given (a lane of its
// own, e.g. training, so long fits never hold the workers other calls need), else on
// `dispatcher`'s.
template <class Req, class Resp, class Session>
grpc::ServerReadReactor<grpc::ByteBuffer>* ClientStream(
    Dispatcher& dispatcher, grpc::CallbackServerContext* context, grpc::ByteBuffer* response,
    const absl::Status& admission, std::unique_ptr<Session> session, StreamLimit limit = {},
    Dispatcher* work = nullptr) {
  using Refused = EndedReactor<grpc::ServerReadReactor<grpc::ByteBuffer>>;
  if (!admission.ok()) return new Refused(ToGrpcStatus(admission));
  absl::StatusOr<Dispatcher::Ticket> ticket = dispatcher.Admit();
  if (!ticket.ok()) return new Refused(internal::Refuse(context, dispatcher, ticket.status()));
  return new ClientStreamReactor<Req, Resp, Session>(work != nullptr ? *work : dispatcher, context,
                                                     *std::move(ticket), std::move(session),
                                                     response, limit);
}

// A server stream: start(request, scope) (returning absl::StatusOr<std::unique_ptr<Source>>) runs
// on the pool, then each next message is produced on the pool by Source::Next(msg) or
// Next(msg, executor, stop) (returning bool or absl::StatusOr<bool>; false = done) and serialised
// there. A Source may instead serialise its messages itself, from the thread that starts their
// write: with `void SerializePending(grpc::ByteBuffer* out)` it writes into `out` the wire bytes of
// the oldest message its Next produced and that was not serialised yet (Next then fills `msg` only
// with what the call's log reads: model version, sample count). It is called once per message, in
// order, right before the write starts, possibly while Next produces the following message. Flow
// control with one message of lookahead: message k+1 is produced (and serialised) while message k
// is being written, and message k+2 only after write k completed, so a slow reader holds at most
// two messages in the server while generation and the transport's copies overlap on two cores. A
// completed write starts the next ready message at once (no hop through the pool). Production
// stops with DEADLINE_EXCEEDED / CANCELLED when the call's deadline passed or it was cancelled,
// and with CANCELLED on a failed write; the stream ends only after the last write completed.
//
// gRPC performs a write (framing, the copies into the socket) on the thread that calls StartWrite.
// With `writer` (a small pool of its own) every write is started there, after its message was
// serialised there when the Source serialises later, so the send of message k and the production
// of k+1 run on different cores instead of one after the other on the pool thread. Without it, the
// pool thread starts the write of a message it finished, a completed write the next ready one.
template <class Req, class Msg, class Source, class StartFn>
class ServerStreamReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  ServerStreamReactor(Dispatcher& dispatcher, grpc::CallbackServerContext* context,
                      Dispatcher::Ticket ticket, std::shared_ptr<Req> request, StartFn start,
                      exec::WorkerPool* writer)
      : dispatcher_(dispatcher),
        context_(context),
        ticket_(std::move(ticket)),
        stop_(StopTokenFor(context)),
        writer_(writer) {
    model_.Update(*request);
    producing_ = true;
    dispatcher_.Run([this, request = std::move(request), start = std::move(start)] {
      absl::Status status = stop_.Check();
      if (status.ok()) {
        auto source = start(*request, CallScope{dispatcher_.executor(), stop_});
        if (source.ok()) {
          source_ = *std::move(source);
        } else {
          status = source.status();
        }
      }
      if (!status.ok()) {
        Produced(status, false);
        return;
      }
      Produce();
    });
  }

  void OnWriteDone(bool ok) override {
    const GrpcReaction reaction(this);
    Action action;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) write_failed_ = true;
      action = NextActionLocked();
    }
    Act(action);
  }
  void OnDone() override {
    GrpcDone(this);
    delete this;
  }

 private:
  enum class Action { kNone, kWrite, kEnd };

  // On the pool: fills spare_ with the next message.
  void Produce() {
    absl::Status status = stop_.Check();
    bool more = false;
    if (status.ok()) {
      message_.Clear();
      absl::StatusOr<bool> next = internal::AsStatusOrBool(
          internal::NextOf(*source_, &message_, CallScope{dispatcher_.executor(), stop_}));
      if (!next.ok()) {
        status = next.status();
      } else if (*next) {
        if (!annotated_) model_.Update(message_);  // e.g. the resolved model_version
        annotated_ = true;
        model_.CountOutput(message_);
        if constexpr (!internal::SerializesLater<Source>::value) {
          status = internal::Serialize(message_, &spare_, dispatcher_.max_message_bytes());
        }
        more = status.ok();
      }
    }
    Produced(status, more);
  }
  // After production: `more` = spare_ holds a message, else the stream ends with `status`.
  void Produced(const absl::Status& status, bool more) {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      producing_ = false;
      if (more) {
        ready_ = true;
      } else {
        end_ = status;
      }
      action = NextActionLocked();
    }
    Act(action);
  }
  // What to do once no write is in flight or a message became ready.
  Action NextActionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) return Action::kNone;
    if (write_failed_) {
      if (producing_) return Action::kNone;  // the producer ends the call when it returns
      final_ = internal::StreamWriteFailed(*context_, started_);
      finished_ = true;
      return Action::kEnd;
    }
    if (ready_) {
      in_flight_.Swap(&spare_);
      ready_ = false;
      writing_ = true;
      if (!end_.has_value()) producing_ = true;
      return Action::kWrite;
    }
    if (end_.has_value()) {
      final_ = *end_;
      finished_ = true;
      return Action::kEnd;
    }
    return Action::kNone;
  }
  void Act(Action action) {
    if (action == Action::kWrite) {
      // writing_ stays set until OnWriteDone, so nothing touches in_flight_ or ends the call
      // before this write has started.
      auto write = [this] {
        if constexpr (internal::SerializesLater<Source>::value) {
          source_->SerializePending(&in_flight_);
        }
        StartGrpcOperation(this, [&] { StartWrite(&in_flight_); });
      };
      if (writer_ != nullptr) {
        writer_->Submit(std::move(write));
      } else {
        write();
      }
      dispatcher_.Run([this] { Produce(); });
    } else if (action == Action::kEnd) {
      source_.reset();
      internal::Annotate(context_, model_);
      GrpcOperation(this);
      Finish(ToGrpcStatus(final_));
    }
  }

  Dispatcher& dispatcher_;
  grpc::CallbackServerContext* context_;
  Dispatcher::Ticket ticket_;
  const exec::StopToken stop_;
  const absl::Time started_ = absl::Now();  // for CallGone
  exec::WorkerPool* const writer_;  // not owned; null: writes start where a message became ready
  // Producer side (one Produce at a time).
  ModelAnnotation model_;
  bool annotated_ = false;
  std::unique_ptr<Source> source_;
  Msg message_;
  absl::Mutex mu_;
  bool producing_ ABSL_GUARDED_BY(mu_) = false;  // a Produce is scheduled or running
  bool ready_ ABSL_GUARDED_BY(mu_) = false;      // spare_ holds the next message
  bool writing_ ABSL_GUARDED_BY(mu_) = false;    // in_flight_ is being written
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> end_ ABSL_GUARDED_BY(mu_);  // production ended with this status
  absl::Status final_;  // the call's status, set once with finished_
  grpc::ByteBuffer spare_;
  grpc::ByteBuffer in_flight_;
};

// Starts a server stream (see ServerStreamReactor); an unparseable request or a full server ends
// the call at once. `writer` (not owned, may be null) starts the stream's writes; it must outlive
// the server's calls.
template <class Req, class Msg, class StartFn>
grpc::ServerWriteReactor<grpc::ByteBuffer>* ServerStream(Dispatcher& dispatcher,
                                                         grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request_bytes,
                                                         StartFn start,
                                                         exec::WorkerPool* writer = nullptr) {
  using Failed = EndedReactor<grpc::ServerWriteReactor<grpc::ByteBuffer>>;
  auto request = std::make_shared<Req>();
  if (absl::Status parsed = internal::ParseRequest(*context, *request_bytes, request.get());
      !parsed.ok()) {
    return new Failed(ToGrpcStatus(parsed));
  }
  absl::StatusOr<Dispatcher::Ticket> ticket = dispatcher.Admit();
  if (!ticket.ok()) return new Failed(internal::Refuse(context, dispatcher, ticket.status()));
  using SourcePtr =
      typename std::invoke_result_t<StartFn, const Req&, const CallScope&>::value_type;
  using Source = typename SourcePtr::element_type;
  return new ServerStreamReactor<Req, Msg, Source, StartFn>(
      dispatcher, context, *std::move(ticket), std::move(request), std::move(start), writer);
}

// A bidi stream answered message by message: each request is handled on the pool by
// fn(request, scope) (returning absl::StatusOr<Resp>) and its response written before the next
// request is read, so responses come in request order and a slow reader holds the server back
// instead of making it buffer. The first error or unparseable message ends the call with that
// status.
template <class Req, class Resp, class Fn>
class BidiReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  BidiReactor(Dispatcher& dispatcher, grpc::CallbackServerContext* context,
              Dispatcher::Ticket ticket, Fn fn)
      : dispatcher_(dispatcher),
        context_(context),
        ticket_(std::move(ticket)),
        fn_(std::move(fn)),
        stop_(StopTokenFor(context)),
        idle_(dispatcher.watchdog(), [this] { End(idle_.Status()); }) {
    idle_.Read([this] { StartGrpcOperation(this, [&] { StartRead(&in_); }); });
  }

  void OnReadDone(bool ok) override {
    const GrpcReaction reaction(this);
    if (!idle_.Progress()) return;  // the watchdog ended the call
    if (!ok) {
      if (context_->IsCancelled()) {
        End(CallGone(*context_, started_, "cancelled by the client", "the call's deadline passed"));
      } else {
        End(absl::OkStatus());  // the client half-closed: every response was written already
      }
      return;
    }
    ++index_;
    absl::Status parsed =
        internal::Parse(in_, &request_, absl::StrCat("message ", index_, " of the stream"));
    if (!parsed.ok()) {
      End(parsed);
      return;
    }
    if (index_ == 1) model_.Update(request_);
    dispatcher_.Run([this] {
      absl::Status status = stop_.Check();
      if (status.ok()) {
        absl::StatusOr<Resp> response = fn_(request_, CallScope{dispatcher_.executor(), stop_});
        if (response.ok()) {
          if (index_ == 1) model_.Update(*response);
          model_.CountOutput(*response);
        }
        status = response.ok()
                     ? internal::Serialize(*response, &out_, dispatcher_.max_message_bytes())
                     : response.status();
      }
      if (!status.ok()) {
        End(status);
        return;
      }
      StartGrpcOperation(this, [&] { StartWrite(&out_); });
    });
  }
  void OnWriteDone(bool ok) override {
    const GrpcReaction reaction(this);
    if (!ok) {
      End(internal::StreamWriteFailed(*context_, started_));
      return;
    }
    idle_.Read([this] { StartGrpcOperation(this, [&] { StartRead(&in_); }); });
  }
  void OnDone() override {
    GrpcDone(this);
    delete this;
  }

 private:
  void End(const absl::Status& status) {
    internal::Annotate(context_, model_);
    GrpcOperation(this);
    Finish(ToGrpcStatus(status));
  }

  Dispatcher& dispatcher_;
  grpc::CallbackServerContext* context_;
  Dispatcher::Ticket ticket_;
  Fn fn_;
  const exec::StopToken stop_;
  const absl::Time started_ = absl::Now();  // for CallGone
  ModelAnnotation model_;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  Req request_;
  int64_t index_ = 0;
  internal::IdleWatch idle_;
};

template <class Req, class Resp, class Fn>
grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Bidi(
    Dispatcher& dispatcher, grpc::CallbackServerContext* context, Fn fn) {
  using Refused = EndedReactor<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>>;
  absl::StatusOr<Dispatcher::Ticket> ticket = dispatcher.Admit();
  if (!ticket.ok()) return new Refused(internal::Refuse(context, dispatcher, ticket.status()));
  return new BidiReactor<Req, Resp, Fn>(dispatcher, context, *std::move(ticket), std::move(fn));
}

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_REACTORS_H_

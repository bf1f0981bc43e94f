// Reusable gRPC callback reactors for thin service adapters: every RPC shape of both services maps
// onto one of these, so adapters stay a line or two per method and the status conversion happens in
// one place.
//
//   grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* ctx, const Req* req, Resp*
//   resp) override {
//     return adapter::Unary(ctx, [&] { return core_->GetModel(*req); }, resp);
//   }
#ifndef MAAS_COMMON_ADAPTER_REACTORS_H_
#define MAAS_COMMON_ADAPTER_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "common/status/grpc_status.h"

namespace maas::adapter {

// Runs `fn` (returning absl::StatusOr<Resp>) and finishes the call with its result. With a non-OK
// `admission` (e.g. a failed token check) the call ends with it and `fn` does not run.
template <class Resp, class Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const absl::Status& admission,
                                Fn&& fn, Resp* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!admission.ok()) {
    reactor->Finish(ToGrpcStatus(admission));
    return reactor;
  }
  absl::StatusOr<Resp> result = std::forward<Fn>(fn)();
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

template <class Resp, class Fn>
grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, Fn&& fn, Resp* response) {
  return Unary(context, absl::OkStatus(), std::forward<Fn>(fn), response);
}

// A client stream folded by a session: Session has `absl::Status Add(const Req&)` and
// `absl::StatusOr<Resp> Finish()`. The first Add error ends the call with that error.
template <class Req, class Resp, class Session>
class ClientStreamReactor final : public grpc::ServerReadReactor<Req> {
 public:
  ClientStreamReactor(grpc::CallbackServerContext* context, std::unique_ptr<Session> session,
                      Resp* response)
      : context_(context), session_(std::move(session)), response_(response) {
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok && context_->IsCancelled()) {  // a cut-off stream is not a complete one: store nothing
      this->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "cancelled before the stream was complete"));
      return;
    }
    if (!ok) {  // the client half-closed: every message arrived
      absl::StatusOr<Resp> result = session_->Finish();
      if (result.ok()) *response_ = *std::move(result);
      this->Finish(ToGrpcStatus(result.status()));
      return;
    }
    absl::Status status = session_->Add(request_);
    if (!status.ok()) {
      this->Finish(ToGrpcStatus(status));
      return;
    }
    this->StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  grpc::CallbackServerContext* context_;
  std::unique_ptr<Session> session_;
  Resp* response_;
  Req request_;
};

// Starts a client stream folded by `session`. With a non-OK `admission` (e.g. a failed token check) the
// call ends with it at once and nothing is read.
template <class Req, class Resp, class Session>
grpc::ServerReadReactor<Req>* ClientStream(grpc::CallbackServerContext* context,
                                           const absl::Status& admission,
                                           std::unique_ptr<Session> session, Resp* response) {
  if (!admission.ok()) {
    class Refused final : public grpc::ServerReadReactor<Req> {
     public:
      explicit Refused(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
      void OnDone() override { delete this; }
    };
    return new Refused(admission);
  }
  return new ClientStreamReactor<Req, Resp, Session>(context, std::move(session), response);
}

template <class Req, class Resp, class Session>
grpc::ServerReadReactor<Req>* ClientStream(grpc::CallbackServerContext* context,
                                           std::unique_ptr<Session> session, Resp* response) {
  return ClientStream<Req>(context, absl::OkStatus(), std::move(session), response);
}

// A server stream produced lazily by a source with `bool Next(Msg*)`: the next message is computed
// only after the previous write completed (flow control), and production stops on cancellation or a
// failed write.
template <class Msg, class Source>
class ServerStreamReactor final : public grpc::ServerWriteReactor<Msg> {
 public:
  explicit ServerStreamReactor(std::unique_ptr<Source> source) : source_(std::move(source)) {
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading the stream"));
      return;
    }
    WriteNext();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (cancelled_.load()) {
      this->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client or the deadline"));
      return;
    }
    if (!source_->Next(&message_)) {
      this->Finish(grpc::Status::OK);
      return;
    }
    this->StartWrite(&message_);
  }

  std::unique_ptr<Source> source_;
  Msg message_;
  std::atomic<bool> cancelled_{false};
};

// Starts a server stream: when `start` (returning absl::StatusOr<std::unique_ptr<Source>>) fails,
// the call ends with that status and nothing is written.
template <class Msg, class StartFn>
grpc::ServerWriteReactor<Msg>* ServerStream(StartFn&& start) {
  auto source = std::forward<StartFn>(start)();
  using Source = typename std::remove_reference_t<decltype(*source)>::element_type;
  if (!source.ok()) {
    class Failed final : public grpc::ServerWriteReactor<Msg> {
     public:
      explicit Failed(const absl::Status& status) { this->Finish(ToGrpcStatus(status)); }
      void OnDone() override { delete this; }
    };
    return new Failed(source.status());
  }
  return new ServerStreamReactor<Msg, Source>(*std::move(source));
}

// A bidi stream answered message by message: each request is handled by `fn` (returning
// absl::StatusOr<Resp>) and its response written before the next request is read, so responses come
// in request order and a slow reader holds the server back instead of making it buffer. The first
// error ends the call with that status.
template <class Req, class Resp, class Fn>
class BidiReactor final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  explicit BidiReactor(Fn fn) : fn_(std::move(fn)) { this->StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed: every response has been written already
      this->Finish(grpc::Status::OK);
      return;
    }
    absl::StatusOr<Resp> response = fn_(request_);
    if (!response.ok()) {
      this->Finish(ToGrpcStatus(response.status()));
      return;
    }
    response_ = *std::move(response);
    this->StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading the stream"));
      return;
    }
    this->StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  Fn fn_;
  Req request_;
  Resp response_;
};

template <class Req, class Resp, class Fn>
grpc::ServerBidiReactor<Req, Resp>* Bidi(Fn fn) {
  return new BidiReactor<Req, Resp, Fn>(std::move(fn));
}

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_REACTORS_H_

// Test helpers: calls through a generic stub with raw message bytes (so a test can send bytes a
// typed stub would refuse to build, e.g. invalid UTF-8 in a string field), and a health check.
#ifndef MAAS_TESTS_COMMON_ADAPTER_RAW_CALL_H_
#define MAAS_TESTS_COMMON_ADAPTER_RAW_CALL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace maas::testing {

inline grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

inline std::string ToString(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

struct RawCallResult {
  grpc::Status status;
  std::vector<std::string> responses;
  std::multimap<std::string, std::string> trailers;
};

// One call of `method` through a generic stub, step by step (a test that must stop in the middle:
// write, then wait; cancel before writing): started by the constructor; each step waits for its
// completion and says whether it succeeded.
class RawCall {
 public:
  RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
          std::chrono::milliseconds deadline = std::chrono::seconds(30))
      : stub_(channel) {
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
    call_ = stub_.PrepareCall(&context_, method, &cq_);
    call_->StartCall(reinterpret_cast<void*>(1));
    started_ = Step();
  }
  ~RawCall() {
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  RawCall(const RawCall&) = delete;
  RawCall& operator=(const RawCall&) = delete;

  // Whether the call started (its headers went out).
  bool started() const { return started_; }
  bool Write(const std::string& message) {
    call_->Write(ToBuffer(message), reinterpret_cast<void*>(2));
    return Step();
  }
  bool WritesDone() {
    call_->WritesDone(reinterpret_cast<void*>(3));
    return Step();
  }
  // The next response, or false when there is none (the call ended).
  bool Read(std::string* response) {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, reinterpret_cast<void*>(4));
    if (!Step()) return false;
    *response = ToString(buffer);
    return true;
  }
  void Cancel() { context_.TryCancel(); }
  grpc::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, reinterpret_cast<void*>(5));
    Step();
    return status;
  }
  const grpc::ClientContext& context() const { return context_; }

 private:
  bool Step() {
    void* tag = nullptr;
    bool ok = false;
    cq_.Next(&tag, &ok);
    return ok;
  }

  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
};

// Runs one streaming call of `method`: writes every message (stopping at the first failed write),
// half-closes, reads every response, finishes. Works for client, server and bidi streams.
inline RawCallResult RawStreamCall(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& method,
                                   const std::vector<std::string>& messages,
                                   std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  RawCall call(channel, method, deadline);
  bool writable = call.started();
  for (const std::string& message : messages) {
    if (!writable) break;
    writable = call.Write(message);
  }
  if (writable) call.WritesDone();
  RawCallResult result;
  for (std::string response; call.Read(&response);) result.responses.push_back(response);
  result.status = call.Finish();
  for (const auto& [key, value] : call.context().GetServerTrailingMetadata()) {
    result.trailers.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
  }
  return result;
}

// A unary call with raw bytes.
inline RawCallResult RawUnaryCall(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method, const std::string& request,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  return RawStreamCall(channel, method, {request}, deadline);
}

// grpc.health.v1.Health/Check of `service` ("" = the server): 1 SERVING, 2 NOT_SERVING, -1 error.
inline int HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  const std::string request = std::string("\x0a", 1) + static_cast<char>(service.size()) + service;
  RawCallResult result =
      RawUnaryCall(channel, "/grpc.health.v1.Health/Check", request, std::chrono::seconds(10));
  if (!result.status.ok() || result.responses.size() != 1) return -1;
  const std::string& response = result.responses[0];
  return response.size() == 2 ? response[1] : 0;
}

}  // namespace maas::testing

#endif  // MAAS_TESTS_COMMON_ADAPTER_RAW_CALL_H_

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

// Runs one streaming call of `method`: writes every message (stopping at the first failed write),
// half-closes, reads every response, finishes. Works for client, server and bidi streams.
inline RawCallResult RawStreamCall(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& method,
                                   const std::vector<std::string>& messages,
                                   std::chrono::milliseconds deadline = std::chrono::seconds(30)) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  auto call = stub.PrepareCall(&context, method, &cq);
  auto step = [&]() {
    void* tag = nullptr;
    bool ok = false;
    cq.Next(&tag, &ok);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  bool writable = step();
  for (const std::string& message : messages) {
    if (!writable) break;
    call->Write(ToBuffer(message), reinterpret_cast<void*>(2));
    writable = step();
  }
  if (writable) {
    call->WritesDone(reinterpret_cast<void*>(3));
    step();
  }
  RawCallResult result;
  for (;;) {
    grpc::ByteBuffer response;
    call->Read(&response, reinterpret_cast<void*>(4));
    if (!step()) break;
    result.responses.push_back(ToString(response));
  }
  call->Finish(&result.status, reinterpret_cast<void*>(5));
  step();
  for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
    result.trailers.emplace(std::string(key.data(), key.size()),
                            std::string(value.data(), value.size()));
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
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

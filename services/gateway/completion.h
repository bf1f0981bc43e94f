// Completion-queue tags of the gateway (gRPC adapter layer).
//
// Every tag the gateway puts on a gRPC completion queue (proxied calls, local answers, backend
// health checks, the Gateway service's fan-outs) is a CompletionHandler, so one loop drains any of
// its queues and nothing runs on gRPC's callback threads:
//
//   void* tag;
//   bool ok;
//   while (cq->Next(&tag, &ok)) static_cast<CompletionHandler*>(tag)->OnComplete(ok);
#ifndef MAAS_SERVICES_GATEWAY_COMPLETION_H_
#define MAAS_SERVICES_GATEWAY_COMPLETION_H_

#include <grpcpp/completion_queue.h>

namespace maas::gateway {

// The tag given to gRPC is the handler's own address, so a class deriving from CompletionHandler
// derives from nothing else (its CompletionHandler is then at the same address).
class CompletionHandler {
 public:
  // The operation this tag was given to has completed (`ok` as gRPC reports it). Runs on the thread
  // draining the queue; may delete the object it belongs to.
  virtual void OnComplete(bool ok) = 0;

 protected:
  ~CompletionHandler() = default;
};

// Handles the completions of `cq` until it is shut down and drained.
inline void DrainCompletions(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq->Next(&tag, &ok)) static_cast<CompletionHandler*>(tag)->OnComplete(ok);
}

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_COMPLETION_H_

// The order gRPC's callback API promises between a reactor's operations and its reactions, told to
// ThreadSanitizer (`make tsan`); in every other build these compile to nothing.
//
// gRPC runs a reaction (OnReadDone, OnWriteDone, OnSendInitialMetadataDone) after the operation
// that started it (StartRead, StartWrite, StartSendInitialMetadata) was called, and OnDone after
// Finish was called and every other reaction, OnCancel included, has returned
// (grpcpp/support/server_callback.h). It keeps that order inside its own library, through
// completion queues, reference counts and atomics that TSan cannot see when gRPC is not
// instrumented (Debian's is not): without these marks every reactor's own state looked racy
// between the thread that started an operation and the one that ran its reaction. Each mark is a
// release or an acquire on the reactor's address:
//
//   StartWrite:     StartGrpcOperation(this, [&] { StartWrite(&out_); });
//   Finish:         GrpcOperation(this); Finish(status);
//   OnWriteDone:    const GrpcReaction reaction(this);   // acquire now, release on return
//   OnCancel:       const GrpcCancelReaction reaction(this);  // release on return only: OnCancel
//                                                              // follows no operation
//   OnDone:         GrpcDone(this); delete this;
//
// The same marks fit an interceptor: GrpcOperation(this) before each hook's Proceed(),
// GrpcDone(this) in its destructor (gRPC destroys it after every hook has returned).
//
// A reaction's acquire also takes what other reactions of the call released before it started
// (gRPC does not order OnReadDone and OnWriteDone of a bidi call): the marks can hide a race
// between two reactions that ran one after the other by chance, never report one that gRPC orders.
#ifndef MAAS_COMMON_ADAPTER_GRPC_ORDER_H_
#define MAAS_COMMON_ADAPTER_GRPC_ORDER_H_

#include <grpcpp/support/status.h>

#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace maas::adapter {

namespace grpc_order_internal {
inline void Acquire([[maybe_unused]] const void* reactor) {
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<void*>(reactor));
#endif
}
inline void Release([[maybe_unused]] const void* reactor) {
#if defined(__SANITIZE_THREAD__)
  __tsan_release(const_cast<void*>(reactor));
#endif
}
}  // namespace grpc_order_internal

// Right before Finish on `reactor`.
inline void GrpcOperation(const void* reactor) { grpc_order_internal::Release(reactor); }

// Runs `start`, a StartRead / StartWrite / StartSendInitialMetadata on `reactor`, marked before
// and after: gRPC's wrapper reads the buffer of a write (and fills its own operation set) inside
// the call, and the reaction to the operation follows those reads. (Not for Finish: OnDone may
// delete the reactor before Finish returns.)
template <class Start>
void StartGrpcOperation(const void* reactor, Start&& start) {
  grpc_order_internal::Release(reactor);
  start();
  grpc_order_internal::Release(reactor);
}

// For the length of a reaction that an operation started (not OnCancel, not OnDone).
class GrpcReaction {
 public:
  explicit GrpcReaction(const void* reactor) : reactor_(reactor) {
    grpc_order_internal::Acquire(reactor_);
  }
  ~GrpcReaction() { grpc_order_internal::Release(reactor_); }
  GrpcReaction(const GrpcReaction&) = delete;
  GrpcReaction& operator=(const GrpcReaction&) = delete;

 private:
  const void* reactor_;
};

// For the length of OnCancel: OnDone follows its return.
class GrpcCancelReaction {
 public:
  explicit GrpcCancelReaction(const void* reactor) : reactor_(reactor) {}
  ~GrpcCancelReaction() { grpc_order_internal::Release(reactor_); }
  GrpcCancelReaction(const GrpcCancelReaction&) = delete;
  GrpcCancelReaction& operator=(const GrpcCancelReaction&) = delete;

 private:
  const void* reactor_;
};

// At the start of OnDone.
inline void GrpcDone(const void* reactor) { grpc_order_internal::Acquire(reactor); }

// A stream reactor (`Base`: grpc::ServerReadReactor, ServerWriteReactor, ServerBidiReactor or
// ServerGenericBidiReactor) that ends its call at once with `status`: a refused or unparseable
// call, or a method nobody serves. Deletes itself.
template <class Base>
class EndedReactor final : public Base {
 public:
  explicit EndedReactor(const grpc::Status& status) {
    GrpcOperation(this);
    this->Finish(status);
  }
  void OnDone() override {
    GrpcDone(this);
    delete this;
  }
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_GRPC_ORDER_H_

#include "common/server/health_service.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/adapter/byte_buffers.h"
#include "common/health/health_wire.h"

namespace maas::server {
namespace {

using health::ServingStatus;

// One Check or Watch call. The board calls OnHealth / OnShutdown with its lock held, from the
// thread that changed it; the reactor's own lock is never held while calling the board, and gRPC
// operations are started after it is released (a write decided under it is the only one in flight,
// and Finish is decided once), so no lock order can invert.
class HealthReactor final : public grpc::ServerGenericBidiReactor, health::HealthBoard::Watcher {
 public:
  HealthReactor(health::HealthBoard* board, bool watch) : board_(board), watch_(watch) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Act(FinishAction(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no HealthCheckRequest was sent")));
      return;
    }
    absl::StatusOr<std::string> service =
        health::DecodeHealthCheckRequest(adapter::ByteBufferToString(request_));
    if (!service.ok()) {
      Act(FinishAction(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    std::string(service.status().message()))));
      return;
    }
    if (!watch_) {
      const ServingStatus status = board_->Get(*service);
      if (status == ServingStatus::kServiceUnknown) {
        Act(FinishAction(grpc::Status(grpc::StatusCode::NOT_FOUND, "service name unknown")));
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      response_ = adapter::ByteBufferFromString(health::EncodeHealthCheckResponse(status));
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    service_ = *std::move(service);
    watching_ = true;
    board_->AddWatch(service_, this);  // OnHealth with the current status (and OnShutdown) now
  }

  void OnHealth(ServingStatus status) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      latest_ = status;
      has_update_ = true;
      action = NextLocked();
    }
    Act(std::move(action));
  }

  void OnShutdown() override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      shut_down_ = true;
      action = NextLocked();
    }
    Act(std::move(action));
  }

  void OnWriteDone(bool ok) override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      action = ok ? NextLocked()
                  : FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED,
                                              "the health watch's stream broke"));
    }
    Act(std::move(action));
  }

  void OnCancel() override {
    Action action;
    {
      absl::MutexLock lock(&mu_);
      action = write_in_flight_
                   ? Action()  // OnWriteDone(false) follows and finishes
                   : FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED,
                                               "the client cancelled the health watch"));
    }
    Act(std::move(action));
  }

  void OnDone() override {
    if (watching_) board_->RemoveWatch(service_, this);  // no OnHealth after it returns
    delete this;
  }

 private:
  // What to start once the lock is released: a write of `response`, or Finish with `status`.
  struct Action {
    enum Kind { kNone, kWrite, kFinish } kind = kNone;
    grpc::Status status;
  };
  Action FinishAction(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    return FinishLocked(std::move(status));
  }
  Action FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return Action();
    finished_ = true;
    return Action{Action::kFinish, std::move(status)};
  }
  // The next step of a Watch: the latest status when no write is in flight, else nothing; after
  // the board's shutdown, with nothing left to write, the end.
  Action NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || write_in_flight_) return Action();
    // A status that changed and changed back while a write was in flight is not sent again.
    if (has_update_ && latest_ != sent_) {
      has_update_ = false;
      sent_ = latest_;
      write_in_flight_ = true;
      response_ = adapter::ByteBufferFromString(health::EncodeHealthCheckResponse(latest_));
      return Action{Action::kWrite, grpc::Status()};
    }
    has_update_ = false;
    if (shut_down_) {
      return FinishLocked(
          grpc::Status(grpc::StatusCode::UNAVAILABLE, health::kWatchShutdownMessage));
    }
    return Action();
  }
  void Act(Action action) {
    if (action.kind == Action::kWrite) StartWrite(&response_);
    if (action.kind == Action::kFinish) Finish(action.status);
  }

  health::HealthBoard* const board_;
  const bool watch_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;  // written only by the one write in flight
  std::string service_;        // set before AddWatch
  bool watching_ = false;      // AddWatch was called (read by OnDone, after every reaction)
  absl::Mutex mu_;
  ServingStatus latest_ ABSL_GUARDED_BY(mu_) = ServingStatus::kUnknown;
  bool has_update_ ABSL_GUARDED_BY(mu_) = false;
  // The last status written (kUnknown, which the board never reports, before the first).
  ServingStatus sent_ ABSL_GUARDED_BY(mu_) = ServingStatus::kUnknown;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

bool IsHealthMethod(std::string_view method) {
  return method == health::kHealthCheckMethod || method == health::kHealthWatchMethod;
}

grpc::ServerGenericBidiReactor* NewHealthReactor(std::string_view method,
                                                 health::HealthBoard* board) {
  return new HealthReactor(board, method == health::kHealthWatchMethod);
}

}  // namespace maas::server

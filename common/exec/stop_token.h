// StopToken: how long-running core work learns that its caller gave up.
//
// Core code (fit, train, classify, estimate, sample batches) is transport-free, so it cannot ask a
// gRPC context whether the deadline passed or the client cancelled. The adapter builds a StopToken
// from the call instead, and the core calls Check() between chunks of work:
//
//   for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
//     MAAS_RETURN_IF_ERROR(stop.Check());  // DEADLINE_EXCEEDED or CANCELLED: stop, free memory
//     ...
//   }
//
// A default-constructed token never stops (unit tests, CLI tools). Thread safety: Check() may be
// called from any number of threads at once if the check function allows it (the adapter's does).
#ifndef MAAS_COMMON_EXEC_STOP_TOKEN_H_
#define MAAS_COMMON_EXEC_STOP_TOKEN_H_

#include <functional>
#include <utility>

#include "absl/status/status.h"

namespace maas::exec {

class StopToken {
 public:
  // Never stops.
  StopToken() = default;
  // `check` returns OK while the work should go on, else the status to end it with (typically
  // DEADLINE_EXCEEDED or CANCELLED). It must be cheap: it is called between chunks of work.
  explicit StopToken(std::function<absl::Status()> check) : check_(std::move(check)) {}

  // OK while the work should continue; otherwise why it must stop.
  absl::Status Check() const { return check_ ? check_() : absl::OkStatus(); }
  // Shorthand for !Check().ok().
  bool stop_requested() const { return !Check().ok(); }

 private:
  std::function<absl::Status()> check_;
};

}  // namespace maas::exec

#endif  // MAAS_COMMON_EXEC_STOP_TOKEN_H_

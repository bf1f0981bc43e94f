// How a call's deadline is read and when a call that ended under gRPC counts as timed out rather
// than cancelled: shared by the reactors (statuses of calls that ended under them) and the server
// kit's call log (what the client of a cancelled call was told).
#ifndef MAAS_COMMON_ADAPTER_CALL_DEADLINE_H_
#define MAAS_COMMON_ADAPTER_CALL_DEADLINE_H_

#include <grpc/support/time.h>
#include <grpcpp/server_context.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/adapter/deadline_counted.h"

namespace maas::adapter {

// The call's deadline (absl::InfiniteFuture() when it has none), read as gRPC keeps it
// (gpr_timespec): context->deadline() converts it to a std::chrono::system_clock time point in
// nanoseconds, which overflows past the year 2262, so a client's deadline a few million hours
// away (Go's longest context timeout, 2562047 h) read as one in the past.
inline absl::Time CallDeadline(const grpc::ServerContextBase& context) {
  const gpr_timespec raw = context.raw_deadline();
  if (gpr_time_cmp(raw, gpr_inf_future(raw.clock_type)) == 0) return absl::InfiniteFuture();
  const gpr_timespec real = gpr_convert_clock_type(raw, GPR_CLOCK_REALTIME);
  return absl::FromUnixSeconds(real.tv_sec) + absl::Nanoseconds(real.tv_nsec);
}

// The status of a call gRPC ended under a reactor (a failed read or write of a cancelled call):
// DEADLINE_EXCEEDED `deadline` when its deadline passed (DeadlineCounted), else CANCELLED
// `cancelled`.
inline absl::Status CallGone(const grpc::ServerContextBase& context, absl::Time started,
                             absl::string_view cancelled, absl::string_view deadline) {
  if (DeadlineCounted(CallDeadline(context), started, absl::Now())) {
    return absl::DeadlineExceededError(deadline);
  }
  return absl::CancelledError(cancelled);
}

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_CALL_DEADLINE_H_

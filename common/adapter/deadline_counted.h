// When a call whose client went away counts as timed out rather than cancelled: one rule for the
// services' reactors and call log (call_deadline.h) and the gateway's HTTP/2 front, which has no
// gRPC library (hence its own header, on Abseil alone).
#ifndef MAAS_COMMON_ADAPTER_DEADLINE_COUNTED_H_
#define MAAS_COMMON_ADAPTER_DEADLINE_COUNTED_H_

#include <algorithm>

#include "absl/time/time.h"

namespace maas::adapter {

// Whether a call started at `started` whose client went away at `now` timed out rather than was
// cancelled, its deadline being `deadline` (absl::InfiniteFuture(): none). A client cancels when
// its own deadline passes, and that reaches the server before the server's timer (the timeout was
// sent rounded up, and travelled): a deadline within min(100 ms, max(5 ms, a tenth of the call's
// time)) counts as passed (the 5 ms: a call of a millisecond or two whose client timed out was
// logged CANCELLED, its cancel arriving more than a tenth of the call's time before the server's
// deadline).
inline bool DeadlineCounted(absl::Time deadline, absl::Time started, absl::Time now) {
  if (deadline == absl::InfiniteFuture()) return false;
  const absl::Duration slack =
      std::min(absl::Milliseconds(100), std::max(absl::Milliseconds(5), (deadline - started) / 10));
  return now >= deadline - slack;
}

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_DEADLINE_COUNTED_H_

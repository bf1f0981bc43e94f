// Dispatcher: admission control in front of the process's worker pool, shared by every adapter.
//
//   exec::WorkerPool pool({.threads = 8});
//   adapter::Dispatcher dispatcher(&pool, {.max_concurrent_calls = 64, .max_queued = 32});
//   MAAS_ASSIGN_OR_RETURN(adapter::Dispatcher::Ticket ticket, dispatcher.Admit());
//   dispatcher.Run([ticket] { ...the call's work... });   // the ticket is released with the call
//
// A call is admitted while fewer than max_concurrent_calls calls hold a ticket and fewer than
// max_queued tasks wait for a worker; otherwise Admit() answers RESOURCE_EXHAUSTED with a retry
// hint, at once (an overload degrades into fast refusals, never into a growing queue). An admitted
// call's later tasks (next stream message, Finish) are always queued: their number is bounded by
// the admitted calls. With a null pool every task runs inline on the calling thread (tests, tools).
// Thread-safe.
#ifndef MAAS_COMMON_ADAPTER_DISPATCHER_H_
#define MAAS_COMMON_ADAPTER_DISPATCHER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/adapter/stream_watchdog.h"
#include "common/exec/executor.h"
#include "common/exec/worker_pool.h"

namespace maas::adapter {

struct DispatcherOptions {
  // Calls admitted at once (running, waiting for a worker, or streaming). 0 = no limit.
  int64_t max_concurrent_calls = 0;
  // Tasks that may wait for a worker when a new call arrives. < 0 = no bound.
  int64_t max_queued = -1;
  // The retry hint of a refusal: the status message and the "retry-after-ms" trailing metadata.
  absl::Duration retry_after = absl::Milliseconds(100);
  // The largest response message the server sends (its --max_message_bytes): a larger one ends the
  // call RESOURCE_EXHAUSTED naming the flag, instead of gRPC's "Sent message larger than max".
  // 0 = unchecked.
  int64_t max_message_bytes = 0;
  // Ends streams that wait on a silent client too long (--stream_idle_timeout_seconds); not
  // owned, must outlive the server's calls. Null: streams may idle until their deadline.
  StreamWatchdog* watchdog = nullptr;
};

// Trailing metadata key of the retry hint on RESOURCE_EXHAUSTED refusals (milliseconds, decimal).
inline constexpr char kRetryAfterMetadataKey[] = "retry-after-ms";

class Dispatcher {
 public:
  // Held by an admitted call until it ends; releases its slot when the last copy goes.
  using Ticket = std::shared_ptr<void>;

  // `pool` is not owned (null = run inline) and must outlive the dispatcher.
  Dispatcher(exec::WorkerPool* pool, DispatcherOptions options);

  // Admits a new call, or RESOURCE_EXHAUSTED naming the limit and the retry hint.
  absl::StatusOr<Ticket> Admit();
  // Runs `task` on the pool (inline without one). For admitted calls only.
  void Run(std::function<void()> task);
  // The executor core code gets for ParallelFor.
  exec::Executor& executor();

  int64_t retry_after_ms() const;
  // DispatcherOptions::max_message_bytes.
  int64_t max_message_bytes() const { return options_.max_message_bytes; }
  // DispatcherOptions::watchdog.
  StreamWatchdog* watchdog() const { return options_.watchdog; }
  // Calls holding a ticket now.
  int64_t in_flight() const;

 private:
  struct Counter;
  exec::WorkerPool* pool_;
  DispatcherOptions options_;
  exec::InlineExecutor inline_;
  std::shared_ptr<Counter> counter_;
};

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_DISPATCHER_H_

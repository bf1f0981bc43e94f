// The gateway's per-call JSON log lines, written by the proxy and the Gateway service themselves
// (gRPC adapter layer).
//
// The other maas servers log through the server kit's interceptor (common/server). The gateway does
// not: a gRPC C++ server interceptor makes every intercepted operation of a call take one more trip
// through gRPC core and the completion queue, which cost the gateway about a third of its CPU per
// proxied call. The lines are the same (maas::server::FormatCallLogLine), and so is the request id
// rule: the client's x-request-id, or one generated here, forwarded to the backend (which then logs
// the same id) and returned to the client in the initial metadata.
//
//   CallLog log("maas-gateway", &std::cerr);
//   CallLog::Call call = log.Begin(server_context->client_metadata());
//   if (call.generated_id) ... forward call.request_id and return it in the initial metadata ...
//   log.End(call, server_context->method(), status, server_context->peer(), "", 0);
//
// With a flush interval the lines are written by the log's own thread (server::LineWriter), at most
// that long after they were logged: the thread that logs (the h2 front's one data-plane thread, the
// proxy's) never waits for the file, so a slow or stalled disk cannot stall the calls. The log then
// holds up to server::LineWriter::kMaxBufferedBytes of lines; beyond that, lines are dropped and
// counted (dropped_lines(), and a note on stderr when the writer catches up), never blocking the
// caller.
#ifndef MAAS_SERVICES_GATEWAY_CALL_LOG_H_
#define MAAS_SERVICES_GATEWAY_CALL_LOG_H_

#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/server/line_writer.h"

namespace maas::gateway {

// Thread-safe.
class CallLog {
 public:
  // One call being logged.
  struct Call {
    absl::Time start;
    // The id of the log line: the client's x-request-id (its printable characters, at most 128),
    // or a generated "<process prefix>-<counter>".
    std::string request_id;
    // True when request_id was generated: the caller forwards it to the backend as x-request-id
    // and returns it to the client in the initial metadata.
    bool generated_id = false;
  };

  // `server` names the server in every line; `out` (not owned, must outlive the log) gets them.
  // flush_interval > 0: written by the log's own thread (see above); 0: by the caller, at once.
  CallLog(std::string server, std::ostream* out,
          absl::Duration flush_interval = absl::ZeroDuration());
  // Writes every line still buffered.
  ~CallLog() = default;
  CallLog(const CallLog&) = delete;
  CallLog& operator=(const CallLog&) = delete;

  // Starts logging a call with the client's metadata.
  Call Begin(const std::multimap<grpc::string_ref, grpc::string_ref>& client_metadata);

  // Writes the call's line (ended now, with this status) and flushes it. `model` and
  // `model_version` come from the backend's maas-model-name / maas-model-version trailers (empty /
  // 0 when absent). The status message is cut to 512 bytes, as the other servers do.
  void End(const Call& call, absl::string_view method, const grpc::Status& status,
           absl::string_view peer, absl::string_view model, int64_t model_version);

  // Writes finished lines (each ending in '\n', e.g. from server::FormatCallLogLine) and flushes
  // (or hands them to the log's thread): for a writer that batches the lines of several calls into
  // one write (the h2 front).
  void WriteLines(absl::string_view lines);

  // Lines dropped (server::LineWriter::dropped_lines).
  uint64_t dropped_lines() const { return writer_.dropped_lines(); }

 private:
  const std::string server_;
  const std::string id_prefix_;  // unique per process start: start time and process id
  std::atomic<uint64_t> next_id_{1};
  server::LineWriter writer_;
};

// The maas-model-name and maas-model-version of a backend's trailing metadata (empty / 0 when
// absent or malformed).
void ModelFromTrailers(const std::multimap<grpc::string_ref, grpc::string_ref>& trailers,
                       std::string* model, int64_t* model_version);

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_CALL_LOG_H_

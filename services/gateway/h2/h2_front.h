// An HTTP/2 frame-forwarding data plane for the gateway (experimental, plaintext h2c only).
//
// One epoll thread; every client connection is an nghttp2 server session, every backend connection
// an nghttp2 client session kept open across calls. A call (HTTP/2 stream) is routed by the service
// part of its :path header, exactly like Router: "/<service>/<method>" -> the route of <service>.
// Its request headers, DATA and END_STREAM are forwarded to a stream on a backend connection of the
// route, the response headers, DATA and trailers back; RST_STREAM crosses in both directions. No
// gRPC library on this path and no payload parsing: DATA bytes are copied, never decoded.
//
// Flow control is manual (nghttp2_session_consume): bytes received on one side are acknowledged to
// their sender only when the other side has handed them to its connection, so a stalled reader
// stalls its writer and a stream holds at most one window in the front.
//
//   MAAS_ASSIGN_OR_RETURN(auto front, H2Front::Create(options));
//   std::thread t([&] { front->Run(); });   // until Stop()
#ifndef MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_
#define MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace maas::gateway::h2 {

// One route: every method of `service` goes to `host`:`port` (an IPv4 literal).
struct FrontRoute {
  // Fully qualified gRPC service name, e.g. "maas.discriminative.v1.DiscriminativeService".
  std::string service;
  // IPv4 address literal of the backend, e.g. "127.0.0.1".
  std::string host;
  // TCP port of the backend, in [1, 65535].
  int port = 0;
};

struct FrontOptions {
  // Address to listen on (IPv4 literal) and port (0 = any free port).
  std::string listen_host = "127.0.0.1";
  int listen_port = 0;
  std::vector<FrontRoute> routes;
  // Persistent connections per route; calls are spread over them round robin. >= 1.
  int backend_connections = 2;
  // SETTINGS_MAX_CONCURRENT_STREAMS announced to each client connection. >= 1.
  int max_streams_per_connection = 256;
  // Per-stream flow-control window towards clients and towards backends, bytes, >= 65535.
  int stream_window_bytes = 256 * 1024;
  // Connection-level window, bytes, >= stream_window_bytes.
  int connection_window_bytes = 16 << 20;
};

class H2Front {
 public:
  // Binds the listening socket. INVALID_ARGUMENT for bad options, UNAVAILABLE when bind fails.
  static absl::StatusOr<std::unique_ptr<H2Front>> Create(const FrontOptions& options);
  ~H2Front();

  // The bound port.
  int port() const;
  // Serves until Stop(); call from one thread only.
  void Run();
  // Thread-safe: makes Run() return (open connections are closed).
  void Stop();

  class Impl;

 private:
  explicit H2Front(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace maas::gateway::h2

#endif  // MAAS_SERVICES_GATEWAY_H2_H2_FRONT_H_

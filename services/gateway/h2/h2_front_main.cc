// maas-h2front (experimental prototype): the HTTP/2 frame-forwarding data plane alone, plaintext
// h2c.
//   maas-h2front --port 0 --route maas.discriminative.v1.DiscriminativeService=127.0.0.1:50053
// Prints "maas-h2front: serving h2c on port <N>" to stderr when ready; SIGTERM/SIGINT stop it.
#include <csignal>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "services/gateway/h2/h2_front.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "IPv4 address to listen on.");
ABSL_FLAG(int, port, 0, "TCP port to listen on (0 = a free port).");
ABSL_FLAG(std::vector<std::string>, route, {},
          "Comma-separated routes <service>=<ipv4>:<port>, e.g. "
          "maas.discriminative.v1.DiscriminativeService=127.0.0.1:50053.");
ABSL_FLAG(int, backend_connections, 2, "Persistent HTTP/2 connections per route.");
ABSL_FLAG(int, max_streams_per_connection, 256, "SETTINGS_MAX_CONCURRENT_STREAMS for clients.");
ABSL_FLAG(int, stream_window_bytes, 256 * 1024, "Per-stream flow-control window, bytes.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  maas::gateway::h2::FrontOptions options;
  options.listen_host = absl::GetFlag(FLAGS_host);
  options.listen_port = absl::GetFlag(FLAGS_port);
  options.backend_connections = absl::GetFlag(FLAGS_backend_connections);
  options.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  options.stream_window_bytes = absl::GetFlag(FLAGS_stream_window_bytes);
  for (const std::string& r : absl::GetFlag(FLAGS_route)) {
    std::vector<std::string> kv = absl::StrSplit(r, absl::MaxSplits('=', 1));
    const size_t colon = kv.size() == 2 ? kv[1].rfind(':') : std::string::npos;
    maas::gateway::h2::FrontRoute route;
    if (colon == std::string::npos || !absl::SimpleAtoi(kv[1].substr(colon + 1), &route.port)) {
      std::cerr << "maas-h2front: --route '" << r << "' is not <service>=<ipv4>:<port>\n";
      return 2;
    }
    route.service = kv[0];
    route.host = kv[1].substr(0, colon);
    options.routes.push_back(route);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto front = maas::gateway::h2::H2Front::Create(options);
  if (!front.ok()) {
    std::cerr << "maas-h2front: " << front.status() << "\n";
    return 2;
  }
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    (*front)->Stop();
  });
  std::cerr << "maas-h2front: serving h2c on port " << (*front)->port() << std::endl;
  (*front)->Run();
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}

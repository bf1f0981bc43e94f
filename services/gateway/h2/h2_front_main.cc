// maas-h2front: the gateway's HTTP/2 frame-forwarding data plane alone (h2c, or TLS with the
// --tls_* flags), for measuring it (bench/gateway_overhead.py --h2front) and testing it without the
// rest of the gateway.
//   maas-h2front --port 0 --route maas.discriminative.v1.DiscriminativeService=ipv4:127.0.0.1:50053
// Prints "maas-h2front: serving h2c on port <N>" (or "h2 over TLS") to stderr when ready;
// SIGTERM/SIGINT drain it.
#include <csignal>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "common/server/flags_help.h"
#include "services/gateway/h2/h2_front.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "IPv4 address to listen on.");
ABSL_FLAG(int, port, 0, "TCP port to listen on (0 = a free port).");
ABSL_FLAG(std::string, route, "",
          "Routes <service>=<target>, separated by ';', e.g. "
          "maas.discriminative.v1.DiscriminativeService=ipv4:127.0.0.1:50053,127.0.0.1:50063.");
ABSL_FLAG(std::string, default_target, "", "Target of every other service (empty: UNIMPLEMENTED).");
ABSL_FLAG(int, backend_connections, 2, "Persistent HTTP/2 connections per replica.");
ABSL_FLAG(int, max_streams_per_connection, 256, "SETTINGS_MAX_CONCURRENT_STREAMS for clients.");
ABSL_FLAG(int, stream_window_bytes, 256 * 1024, "Per-stream flow-control window, bytes.");
ABSL_FLAG(int, retry_max_attempts, 3, "Attempts of an idempotent call (1..5).");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "Largest gRPC message in either direction, bytes.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain (with --tls_key_file: TLS, ALPN h2).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key.");
ABSL_FLAG(std::string, tls_client_ca_file, "", "PEM CA of client certificates (mutual TLS).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "maas-h2front: the gateway's HTTP/2 frame-forwarding data plane alone (h2c, or TLS)");
  maas::server::HandleHelpFlag(argc, argv, __FILE__);
  absl::ParseCommandLine(argc, argv);
  maas::gateway::h2::FrontOptions options;
  options.listen_host = absl::GetFlag(FLAGS_host);
  options.listen_port = absl::GetFlag(FLAGS_port);
  options.default_target = absl::GetFlag(FLAGS_default_target);
  options.backend_connections = absl::GetFlag(FLAGS_backend_connections);
  options.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  options.stream_window_bytes = absl::GetFlag(FLAGS_stream_window_bytes);
  options.retry_max_attempts = absl::GetFlag(FLAGS_retry_max_attempts);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  {
    for (absl::string_view r : absl::StrSplit(absl::GetFlag(FLAGS_route), ';', absl::SkipEmpty())) {
      std::vector<std::string> kv = absl::StrSplit(r, absl::MaxSplits('=', 1));
      if (kv.size() != 2) {
        std::cerr << "maas-h2front: --route '" << r << "' is not <service>=<target>\n";
        return 2;
      }
      options.routes.push_back({kv[0], kv[1], {}, {}});
    }
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
    (*front)->Shutdown(absl::Seconds(10));
  });
  std::cerr << "maas-h2front: serving " << (options.tls_cert_file.empty() ? "h2c" : "h2 over TLS")
            << " on port " << (*front)->port() << std::endl;
  (*front)->Run();
  waiter.join();
  return 0;
}

// maas-generative: wires flags into options and serves GenerativeService until SIGINT/SIGTERM.
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/adapter/auth.h"
#include "common/adapter/dispatcher.h"
#include "common/adapter/stream_budget.h"
#include "common/exec/worker_pool.h"
#include "common/random/simd_level.h"
#include "common/registry/model_repository.h"
#include "common/server/flags_help.h"
#include "common/server/malloc_retention.h"
#include "common/server/model_cache_metrics.h"
#include "common/server/server.h"
#include "common/store/file_model_store.h"
#include "services/generative/adapter/generative_service.h"
#include "services/generative/core/families.h"
#include "services/generative/core/generative_core.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50052, "Port to listen on (0 = pick a free port and print it).");
ABSL_FLAG(std::string, model_dir, "./var/models/generative",
          "This service's model store: <model_dir>/<name>/<version>/model.pb (never shared with "
          "the other service: names are per service).");
ABSL_FLAG(
    int, metrics_port, -1,
    "Serve Prometheus metrics on http://<host>:<port>/metrics (-1 = off, 0 = any free port).");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate chain (with --tls_key_file: serve TLS).");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA of client certificates: clients must present one (mutual TLS).");
ABSL_FLAG(int, max_message_bytes, 64 << 20, "Largest message received or sent, in bytes.");
ABSL_FLAG(uint64_t, max_samples_per_request, 10'000'000,
          "Largest num_samples of one Sample request.");
ABSL_FLAG(uint64_t, max_fit_rows, 10'000'000,
          "Largest number of training rows of one FitModel stream.");
ABSL_FLAG(uint64_t, max_estimate_rows, 100'000, "Largest number of rows of one estimate request.");
ABSL_FLAG(uint64_t, max_model_bytes, uint64_t{256} << 20,
          "Largest model, in bytes of float64 parameters: a FitModel whose model (e.g. "
          "gaussian_mixture FULL: n_components x D x D x 8 bytes; ppca / factor_analysis: the "
          "D x D covariance) or a CreateModel whose spec is larger is refused with "
          "RESOURCE_EXHAUSTED before any fitting; so is a mixture fit whose rows x n_components "
          "responsibilities (3 x 8 bytes each) would pass it (0 = no cap). A fit peaks at ~9x "
          "this.");
ABSL_FLAG(uint64_t, max_ais_work, 1'000'000'000,
          "Largest work of one AIS estimate (of one StreamEstimate increment), in gradient "
          "evaluations: rows x (num_samples + pilot_chains) x num_temperatures x leapfrog_steps. "
          "Above it the request is refused up front with RESOURCE_EXHAUSTED (0 = no cap).");
ABSL_FLAG(double, max_estimate_work, 5e12,
          "Largest work of one PRIOR, IMPORTANCE or AIS estimate (of one StreamEstimate "
          "increment), in multiply-adds counted from the model's size: rows x num_samples x (~2000 "
          "+ one log p(x|z) of the model, e.g. every layer of an mlp_decoder), plus proposals and "
          "AIS's transitions. Above it the request is refused up front with RESOURCE_EXHAUSTED "
          "(0 = no cap). 5e12 is ~2 minutes of two cores.");
ABSL_FLAG(int64_t, max_stream_estimate_tail_bytes, int64_t{1} << 30,
          "Largest memory, in bytes, the StreamEstimate calls in progress keep together for Pareto "
          "k-hat (about 3 sqrt(max_samples) log weights per row, reserved when a stream starts): a "
          "stream that would pass it is refused up front with RESOURCE_EXHAUSTED (0 = no cap). A "
          "stream also keeps its rows' IMPORTANCE proposals or AIS pilots here for every increment "
          "when they fit (else it rebuilds them per increment).");
ABSL_FLAG(double, max_fit_seconds, 1800,
          "Longest a FitModel's fitting may run, in seconds, checked between its iterations: past "
          "it the fit ends with RESOURCE_EXHAUSTED and nothing is stored (0 = no limit).");
ABSL_FLAG(int64_t, max_fit_bytes, int64_t{1} << 30,
          "Largest total size of one FitModel stream's messages, in bytes (RESOURCE_EXHAUSTED "
          "above it; 0 = no cap).");
ABSL_FLAG(int64_t, max_total_fit_bytes, int64_t{2} << 30,
          "Largest total size of the messages that all FitModel streams in progress hold at once, "
          "in bytes: a stream whose next message would pass it ends RESOURCE_EXHAUSTED, so that "
          "concurrent fits cannot together exhaust the process's memory (0 = no cap). A fit's "
          "peak memory is a few times its data (see README, Limits).");
ABSL_FLAG(int, threads, 0,
          "Worker threads that run every request's work (0 = one per hardware thread).");
ABSL_FLAG(int64_t, max_concurrent_calls, 256,
          "Calls served at once (running, queued or streaming); more are refused at once with "
          "RESOURCE_EXHAUSTED and a retry hint (0 = no limit).");
ABSL_FLAG(int64_t, max_queued_calls, -1,
          "Tasks that may wait for a worker when a call arrives; beyond, new calls are refused "
          "with RESOURCE_EXHAUSTED (-1 = as many as --max_concurrent_calls).");
ABSL_FLAG(int64_t, model_cache_bytes, int64_t{2} << 30,
          "Budget of loaded models, in bytes held in memory (parsed parameter tables; the stored "
          "message is not kept): least-recently-used versions no call holds "
          "are evicted beyond it and loaded again when asked for (0 = no budget).");
ABSL_FLAG(std::string, log_file, "",
          "File the per-call JSON log lines are appended to (only those lines; banners and library "
          "messages go to stderr). Empty: stderr.");
ABSL_FLAG(
    int, malloc_retain_mb, 32,
    "Freed heap memory (MiB, at most 32) malloc keeps for the next calls instead of returning "
    "it to the kernel, and the block size below which it serves blocks from its heaps: large "
    "requests then stop faulting fresh pages in on every call. 0 = glibc's own thresholds; "
    "glibc's malloc tunables in the environment (GLIBC_TUNABLES, MALLOC_*_THRESHOLD_) win.");
ABSL_FLAG(int, malloc_release_mb, 128,
          "Freed heap memory (MiB) beyond which it goes back to the kernel: a thread checks once a "
          "second, and when the process holds this much more freed memory in RAM than after its "
          "last release (a Train, a fit, a deleted or evicted model), it returns the free pages "
          "of every heap (glibc's malloc_trim), which glibc itself does only at a heap's top; "
          "after releases that return little it checks less often. With MALLOC_ARENA_MAX at 1-2 "
          "calls stall while it runs (~100-200 ms per GB). 0 = never.");
ABSL_FLAG(int, log_flush_ms, 20,
          "The call log lines are written by their own thread at most this many ms after the call "
          "ended, so a slow disk or a stalled reader of stderr never holds up calls (lines beyond "
          "8 MiB waiting are dropped and counted on stderr); 0 = each line written by the thread "
          "that ended the call.");
ABSL_FLAG(
    double, max_connection_age_seconds, 0,
    "Close client connections older than this (gracefully: GOAWAY, in-flight calls finish), so "
    "clients such as the gateway re-resolve DNS and reach replicas added since (0 = never).");
ABSL_FLAG(double, stream_idle_timeout_seconds, 300,
          "A stream whose client sends no message for longer than this (FitModel, Train, "
          "Evaluate, ClassifyStream) is ended with CANCELLED and nothing stored, so silent clients "
          "cannot hold the calls of --max_concurrent_calls; time the server spends working never "
          "counts, and streams the client only reads (Sample) are never cut (0 = never).");
ABSL_FLAG(double, poll_seconds, 2.0,
          "How often the model store is polled for versions written elsewhere (0 = off).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token; when set, CreateModel, FitModel and DeleteModel need "
          "'authorization: Bearer <token>'. Empty: no token needed.");
ABSL_FLAG(double, shutdown_grace_seconds, 10.0,
          "How long in-flight calls may finish after SIGTERM.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("maas-generative: generative models over gRPC (maas.generative.v1)");
  maas::server::HandleHelpFlag(argc, argv, __FILE__);
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock detection on: a lock-order
  // graph updated on every lock, a measurable share of a small call's CPU. The unit tests (which do
  // not run this) keep it on and so still catch lock-order cycles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (const std::string problem = maas::random::SimdEnvironmentProblem(); !problem.empty()) {
    std::cerr << "maas-generative: " << problem << "\n";
    return 1;
  }
  maas::server::BlockTerminationSignals();
  maas::server::IgnoreBrokenPipes();
  // Freed memory kept for the next calls, and beyond it returned to the kernel
  // (malloc_retention.h).
  absl::StatusOr<std::unique_ptr<maas::server::FreedMemoryReleaser>> heap =
      maas::server::ConfigureHeap(absl::GetFlag(FLAGS_malloc_retain_mb),
                                  absl::GetFlag(FLAGS_malloc_release_mb));
  if (!heap.ok()) {
    std::cerr << "maas-generative: " << heap.status().message() << "\n";
    return 1;
  }

  if (!(absl::GetFlag(FLAGS_max_fit_seconds) >= 0) ||
      absl::GetFlag(FLAGS_max_fit_seconds) == std::numeric_limits<double>::infinity()) {
    std::cerr << "maas-generative: --max_fit_seconds must be a number >= 0 (0 = no limit); got "
              << absl::GetFlag(FLAGS_max_fit_seconds) << "\n";
    return 1;
  }
  if (!(absl::GetFlag(FLAGS_max_estimate_work) >= 0)) {  // also refuses NaN
    std::cerr << "maas-generative: --max_estimate_work must be >= 0 (0 = no cap); got "
              << absl::GetFlag(FLAGS_max_estimate_work) << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<maas::store::FileModelStore>> store =
      maas::store::FileModelStore::OpenAndCleanUp(absl::GetFlag(FLAGS_model_dir), std::cerr);
  if (!store.ok()) {
    std::cerr << "maas-generative: " << store.status() << "\n";
    return 1;
  }
  maas::registry::ModelRepository<maas::generative::LoadedModel> repository(
      store->get(),
      [max_model_bytes = absl::GetFlag(FLAGS_max_model_bytes)](maas::store::StoredBytes bytes) {
        return maas::generative::ParseStoredModelWith(
            std::move(bytes), maas::generative::DefaultFamilies(), max_model_bytes);
      },
      absl::Seconds(absl::GetFlag(FLAGS_poll_seconds)), absl::GetFlag(FLAGS_model_cache_bytes));
  repository.ReportUnreadableVersionsInBackground("maas-generative: WARNING: ", &std::cerr);

  std::random_device entropy;
  std::mutex entropy_mutex;
  maas::generative::GenerativeCoreOptions core_options;
  core_options.repository = &repository;
  core_options.max_samples_per_request = absl::GetFlag(FLAGS_max_samples_per_request);
  core_options.max_fit_rows = absl::GetFlag(FLAGS_max_fit_rows);
  core_options.max_estimate_rows = absl::GetFlag(FLAGS_max_estimate_rows);
  core_options.max_ais_work = absl::GetFlag(FLAGS_max_ais_work);
  core_options.max_estimate_work = absl::GetFlag(FLAGS_max_estimate_work);
  core_options.max_fit_duration = absl::GetFlag(FLAGS_max_fit_seconds) == 0
                                      ? absl::InfiniteDuration()
                                      : absl::Seconds(absl::GetFlag(FLAGS_max_fit_seconds));
  core_options.max_model_bytes = absl::GetFlag(FLAGS_max_model_bytes);
  core_options.max_stream_estimate_tail_bytes = absl::GetFlag(FLAGS_max_stream_estimate_tail_bytes);
  core_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  core_options.fresh_seed = [&] {
    std::lock_guard<std::mutex> lock(entropy_mutex);
    return (static_cast<uint64_t>(entropy()) << 32) | entropy();
  };
  maas::generative::GenerativeCore core(std::move(core_options));
  absl::StatusOr<maas::adapter::WriteAuthorizer> auth =
      maas::adapter::WriteAuthorizer::FromTokenFile(absl::GetFlag(FLAGS_auth_token_file));
  if (!auth.ok()) {
    std::cerr << "maas-generative: " << auth.status() << "\n";
    return 1;
  }
  // Every request's work runs on this pool, behind admission control; declared before the server so
  // it outlives it (the server waits for its calls, whose work runs here).
  maas::exec::WorkerPool pool({absl::GetFlag(FLAGS_threads)});
  maas::adapter::DispatcherOptions dispatch;
  dispatch.max_concurrent_calls = absl::GetFlag(FLAGS_max_concurrent_calls);
  dispatch.max_queued =
      absl::GetFlag(FLAGS_max_queued_calls) >= 0
          ? absl::GetFlag(FLAGS_max_queued_calls)
          : (dispatch.max_concurrent_calls > 0 ? dispatch.max_concurrent_calls : -1);
  dispatch.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  const double idle_seconds = absl::GetFlag(FLAGS_stream_idle_timeout_seconds);
  if (!(idle_seconds >= 0)) {
    std::cerr << "maas-generative: --stream_idle_timeout_seconds must be >= 0\n";
    return 1;
  }
  maas::adapter::StreamWatchdog watchdog(absl::Seconds(idle_seconds));
  dispatch.watchdog = &watchdog;
  maas::adapter::Dispatcher dispatcher(&pool, dispatch);
  maas::adapter::StreamBudget fit_budget(absl::GetFlag(FLAGS_max_total_fit_bytes),
                                         "--max_total_fit_bytes");
  maas::generative::GenerativeServiceImpl service(&core, &*auth, &dispatcher,
                                                  absl::GetFlag(FLAGS_max_fit_bytes), &fit_budget);

  maas::server::ServerOptions server_options;
  server_options.name = "maas-generative";
  server_options.host = absl::GetFlag(FLAGS_host);
  server_options.port = absl::GetFlag(FLAGS_port);
  server_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  server_options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  server_options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  server_options.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  server_options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  server_options.max_connection_age =
      absl::Seconds(absl::GetFlag(FLAGS_max_connection_age_seconds));
  if (absl::GetFlag(FLAGS_log_flush_ms) < 0) {
    std::cerr << "maas-generative: --log_flush_ms must be >= 0 (0 = no log thread); got "
              << absl::GetFlag(FLAGS_log_flush_ms) << "\n";
    return 1;
  }
  server_options.log_flush_interval = absl::Milliseconds(absl::GetFlag(FLAGS_log_flush_ms));
  std::ofstream log_file;
  if (!absl::GetFlag(FLAGS_log_file).empty()) {
    log_file.open(absl::GetFlag(FLAGS_log_file), std::ios::app);
    if (!log_file) {
      std::cerr << "maas-generative: cannot open --log_file " << absl::GetFlag(FLAGS_log_file)
                << " for appending\n";
      return 1;
    }
    server_options.log_stream = &log_file;
  }
  server_options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  absl::StatusOr<std::unique_ptr<maas::server::Server>> server =
      maas::server::Server::Start(server_options, {&service});
  if (!server.ok()) {
    std::cerr << "maas-generative: " << server.status() << "\n";
    return 1;
  }
  if (maas::server::ServerMetrics* metrics = (*server)->metrics()) {
    maas::server::ExportModelCacheMetrics(*metrics, repository);
    maas::server::ExportHeapMetrics(*metrics, heap->get());
  }
  maas::server::ServeUntilTerminated(
      **server,
      absl::StrCat("maas.generative.v1.GenerativeService (model_dir ",
                   absl::GetFlag(FLAGS_model_dir), ", sampling kernels on the ",
                   maas::random::SimdLevelName(maas::random::BestSimdLevel()), " SIMD path)"));
  repository.SetLoadObserver({});  // the metrics go with the server
  return 0;
}

// maas-discriminative: wires flags into options and serves DiscriminativeService until
// SIGINT/SIGTERM.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <memory>
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
#include "services/discriminative/adapter/discriminative_service.h"
#include "services/discriminative/core/count_simd.h"
#include "services/discriminative/core/discriminative_core.h"

ABSL_FLAG(std::string, host, "0.0.0.0", "Address to listen on.");
ABSL_FLAG(int, port, 50053, "Port to listen on (0 = pick a free port and print it).");
ABSL_FLAG(std::string, model_dir, "./var/models/discriminative",
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
ABSL_FLAG(uint64_t, max_texts_per_request, 100'000,
          "Largest number of texts of one Classify/Vectorize request.");
ABSL_FLAG(uint64_t, max_text_bytes, 1 << 20, "Largest text, in bytes.");
ABSL_FLAG(uint64_t, max_train_examples, 10'000'000,
          "Largest number of examples of one Train stream.");
ABSL_FLAG(int64_t, max_train_bytes, int64_t{1} << 30,
          "Largest total size of one Train stream's messages, in bytes (RESOURCE_EXHAUSTED above "
          "it; 0 = no cap).");
ABSL_FLAG(int64_t, max_total_train_bytes, int64_t{2} << 30,
          "Largest total size of the messages that all Train streams in progress hold at once, in "
          "bytes: a stream whose next message would pass it ends RESOURCE_EXHAUSTED, so that "
          "concurrent trainings cannot together exhaust the process's memory (0 = no cap).");
ABSL_FLAG(int, threads, 0,
          "Worker threads that run every request's work (0 = one per hardware thread).");
ABSL_FLAG(
    int, train_threads, 1,
    "Worker threads that run Train streams (vectorizing the batches, fitting, storing), apart "
    "from --threads, so retraining never holds a worker classification needs; more concurrent "
    "Trains wait for one another (>= 1).");
ABSL_FLAG(int64_t, inline_classify_bytes, 0,
          "Opt-in latency mode (0, the default: every Classify runs on the worker pool). When > 0, "
          "Classify calls of at most 16 texts and this many bytes of text in all, without "
          "explanations, against a model already in memory, run on the gRPC thread that received "
          "them (one at a time) instead of a worker: for them the hand-off to a worker costs more "
          "CPU than the classification.");
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
ABSL_FLAG(uint32_t, max_ngram, 16,
          "Largest n-gram size (ngram_max) a Train or CreateModel may configure.");
ABSL_FLAG(uint64_t, max_classes, 10'000, "Largest number of classes of one model.");
ABSL_FLAG(uint64_t, max_model_cells, uint64_t{1} << 25,
          "Largest classes x features of one model (per parameter matrix).");
ABSL_FLAG(uint64_t, max_model_bytes, uint64_t{1} << 30, "Largest stored model, in bytes.");
ABSL_FLAG(uint64_t, max_train_memory_bytes, uint64_t{4} << 30,
          "Largest memory one Train's vectorizing may hold (vocabulary and sparse feature rows, "
          "checked after each text; above it RESOURCE_EXHAUSTED and nothing stored).");
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
          "File holding a bearer token; when set, CreateModel, Train and DeleteModel need "
          "'authorization: Bearer <token>'. Empty: no token needed.");
ABSL_FLAG(double, shutdown_grace_seconds, 10.0,
          "How long in-flight calls may finish after SIGTERM.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "maas-discriminative: text classifiers over gRPC (maas.discriminative.v1)");
  maas::server::HandleHelpFlag(argc, argv, __FILE__);
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock detection on: a lock-order
  // graph updated on every lock, a measurable share of a small call's CPU. The unit tests (which do
  // not run this) keep it on and so still catch lock-order cycles.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (const std::string problem = maas::random::SimdEnvironmentProblem(); !problem.empty()) {
    std::cerr << "maas-discriminative: " << problem << "\n";
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
    std::cerr << "maas-discriminative: " << heap.status().message() << "\n";
    return 1;
  }

  absl::StatusOr<std::unique_ptr<maas::store::FileModelStore>> store =
      maas::store::FileModelStore::OpenAndCleanUp(absl::GetFlag(FLAGS_model_dir), std::cerr);
  if (!store.ok()) {
    std::cerr << "maas-discriminative: " << store.status() << "\n";
    return 1;
  }
  maas::registry::ModelRepository<maas::discriminative::LoadedPipeline> repository(
      store->get(), maas::discriminative::ParseStoredPipeline,
      absl::Seconds(absl::GetFlag(FLAGS_poll_seconds)), absl::GetFlag(FLAGS_model_cache_bytes));
  repository.ReportUnreadableVersionsInBackground("maas-discriminative: WARNING: ", &std::cerr);

  maas::discriminative::DiscriminativeCoreOptions core_options;
  core_options.repository = &repository;
  core_options.max_texts_per_request = absl::GetFlag(FLAGS_max_texts_per_request);
  core_options.max_text_bytes = absl::GetFlag(FLAGS_max_text_bytes);
  core_options.max_train_examples = absl::GetFlag(FLAGS_max_train_examples);
  // Answers that could not be sent (Classify, Evaluate, GetModel) are refused before they are
  // built.
  core_options.max_message_bytes =
      static_cast<uint64_t>(std::max(0, absl::GetFlag(FLAGS_max_message_bytes)));
  core_options.limits.max_ngram = absl::GetFlag(FLAGS_max_ngram);
  core_options.limits.max_classes = absl::GetFlag(FLAGS_max_classes);
  core_options.limits.max_model_cells = absl::GetFlag(FLAGS_max_model_cells);
  core_options.limits.max_model_bytes = absl::GetFlag(FLAGS_max_model_bytes);
  core_options.limits.max_train_memory_bytes = absl::GetFlag(FLAGS_max_train_memory_bytes);
  maas::discriminative::DiscriminativeCore core(std::move(core_options));
  absl::StatusOr<maas::adapter::WriteAuthorizer> auth =
      maas::adapter::WriteAuthorizer::FromTokenFile(absl::GetFlag(FLAGS_auth_token_file));
  if (!auth.ok()) {
    std::cerr << "maas-discriminative: " << auth.status() << "\n";
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
    std::cerr << "maas-discriminative: --stream_idle_timeout_seconds must be >= 0\n";
    return 1;
  }
  maas::adapter::StreamWatchdog watchdog(absl::Seconds(idle_seconds));
  dispatch.watchdog = &watchdog;
  maas::adapter::Dispatcher dispatcher(&pool, dispatch);
  // Train streams run on a pool of their own (admitted by `dispatcher` like every call).
  if (absl::GetFlag(FLAGS_train_threads) < 1) {
    std::cerr << "maas-discriminative: --train_threads must be >= 1\n";
    return 1;
  }
  maas::exec::WorkerPool train_pool({absl::GetFlag(FLAGS_train_threads)});
  maas::adapter::DispatcherOptions train_dispatch;
  train_dispatch.max_message_bytes = dispatch.max_message_bytes;
  train_dispatch.watchdog = &watchdog;
  maas::adapter::Dispatcher train_dispatcher(&train_pool, train_dispatch);
  maas::adapter::StreamBudget train_budget(absl::GetFlag(FLAGS_max_total_train_bytes),
                                           "--max_total_train_bytes");
  maas::discriminative::DiscriminativeServiceImpl service(&core, &*auth, &dispatcher,
                                                          absl::GetFlag(FLAGS_max_train_bytes),
                                                          &train_dispatcher, &train_budget);
  service.InlineSmallClassify(
      absl::GetFlag(FLAGS_inline_classify_bytes),
      [&repository](const maas::common::v1::ModelRef& ref) { return repository.Cached(ref); });

  maas::server::ServerOptions server_options;
  server_options.name = "maas-discriminative";
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
    std::cerr << "maas-discriminative: --log_flush_ms must be >= 0 (0 = no log thread); got "
              << absl::GetFlag(FLAGS_log_flush_ms) << "\n";
    return 1;
  }
  server_options.log_flush_interval = absl::Milliseconds(absl::GetFlag(FLAGS_log_flush_ms));
  std::ofstream log_file;
  if (!absl::GetFlag(FLAGS_log_file).empty()) {
    log_file.open(absl::GetFlag(FLAGS_log_file), std::ios::app);
    if (!log_file) {
      std::cerr << "maas-discriminative: cannot open --log_file " << absl::GetFlag(FLAGS_log_file)
                << " for appending\n";
      return 1;
    }
    server_options.log_stream = &log_file;
  }
  server_options.shutdown_grace = absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  absl::StatusOr<std::unique_ptr<maas::server::Server>> server =
      maas::server::Server::Start(server_options, {&service});
  if (!server.ok()) {
    std::cerr << "maas-discriminative: " << server.status() << "\n";
    return 1;
  }
  if (maas::server::ServerMetrics* metrics = (*server)->metrics()) {
    maas::server::ExportModelCacheMetrics(*metrics, repository);
    maas::server::ExportHeapMetrics(*metrics, heap->get());
  }
  maas::server::ServeUntilTerminated(
      **server, absl::StrCat("maas.discriminative.v1.DiscriminativeService (model_dir ",
                             absl::GetFlag(FLAGS_model_dir), ", word counts on the ",
                             maas::random::SimdLevelName(maas::discriminative::BestCountSimdPath()),
                             " SIMD path)"));
  repository.SetLoadObserver({});  // the metrics go with the server
  return 0;
}

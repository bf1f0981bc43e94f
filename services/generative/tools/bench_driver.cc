// In-process benchmark driver for bench/generative_vs_numpy.py: times the generative core on one
// model (a GenerativeModelSpec file) with one thread and prints one JSON object.
//
//   maas_generative_bench_driver sample   <spec.pb> <num_samples> <seconds>
//       Sample() in batches of <num_samples> rows for <seconds> of process CPU time split into 5
//       windows: {"rows_per_second": median over the windows, "simd": the SIMD level of the
//       normals and products (avx512, avx2 or baseline)}.
//   maas_generative_bench_driver loglik   <spec.pb> <num_latents> <seconds>
//       LogLikelihoodGivenLatent for one x and <num_latents> prior draws of z, repeated for
//       <seconds> of process CPU time split into 5 windows: {"evaluations_per_second": median
//       over the windows, "kernel_path": ..., "mlp_gram_form": ...}.
//   maas_generative_bench_driver peak <seconds>
//       This core's fp64 FMA throughput: independent vector FMAs on the widest path this CPU
//       runs, median of 5 CPU-time windows: {"flops_per_second": ..., "path": ...}.
//   maas_generative_bench_driver estimate <spec.pb> <PRIOR|IMPORTANCE|AIS> <num_samples> <temps>
//       One estimate on one sampled row: {"log_likelihood", "standard_error", "ess", "seconds"}.
//   maas_generative_bench_driver exact    <spec.pb> <rows.f64> <log_p.f64> <seconds>
//       EXACT log p(x) (ExactLogLikelihoodRows on one thread, as the service runs it) of the rows
//       in <rows.f64> (float64, row-major, D per row), repeated for <seconds> of process CPU time
//       split into 5 windows; writes the log p(x) values to <log_p.f64>: {"rows_per_second": median
//       over the windows, "simd": ...}.
//   maas_generative_bench_driver fit <fit_config.pb> <rows.f64> <columns> <spec_out.pb>
//       One fit (the family's fitter, as FitModel runs it, one thread) of the rows in <rows.f64>
//       (float64, row-major, <columns> per row) with the FitConfig in <fit_config.pb>; writes the
//       fitted GenerativeModelSpec to <spec_out.pb>: {"cpu_seconds": the fit's process CPU time
//       (adding the rows and Finish), "n_iter", "log_likelihood": the trace's last value}.
//   maas_generative_bench_driver served <spec.pb> <host:port> <num_samples> <batch_size> [<pid>]
//       A C++ gRPC client of a running maas-generative: CreateModel "bench-served" from the spec,
//       then one Sample stream of <num_samples> rows (seed 1) parsed into SampleBatch messages
//       (the doubles stay binary): {"rows_per_second", "payload_bytes_per_second" (float64 x
//       values), "wire_bytes_per_second" (serialised messages), "messages", "wall_seconds",
//       "client_cpu_seconds" (this whole process, getrusage), "server_cpu_seconds" and
//       "server_busiest_thread_cpu_seconds" and "server_second_thread_cpu_seconds" (the two
//       threads of the server that used the most CPU; /proc/<pid>, when given), "checksum"}.
#include <immintrin.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/exec/executor.h"
#include "common/math/gemm.h"
#include "common/random/simd_level.h"
#include "grpcpp/grpcpp.h"
#include "maas/generative/v1/generative.grpc.pb.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/estimators.h"
#include "services/generative/core/families.h"
#include "services/generative/core/mlp_decoder.h"

namespace maas::generative {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Median over 5 windows of budget/5 CPU seconds of (units done by `step`) per second.
template <typename Step>
double MedianRate(double budget, Step step) {
  std::vector<double> rates;
  for (int w = 0; w < 5; ++w) {
    const double start = CpuSeconds();
    double units = 0;
    while (CpuSeconds() - start < budget / 5) units += step();
    rates.push_back(units / (CpuSeconds() - start));
  }
  std::sort(rates.begin(), rates.end());
  return rates[2];
}

// 24 independent accumulator chains (enough to cover FMA latency x throughput), 2 flops per lane.
__attribute__((target("avx512f"))) double FmaBurstAvx512() {
  __m512d acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_pd(i);
  const __m512d a = _mm512_set1_pd(0.999999), b = _mm512_set1_pd(1e-7);
  for (int it = 0; it < 100000; ++it) {
#pragma GCC unroll 24
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_pd(a, acc[i], b);
  }
  double lanes[8], sink = 0;
  for (int i = 0; i < 24; ++i) {
    _mm512_storeu_pd(lanes, acc[i]);
    for (double v : lanes) sink += v;
  }
  volatile double keep = sink;
  (void)keep;
  return 100000.0 * 24 * 8 * 2;
}

__attribute__((target("avx2,fma"))) double FmaBurstAvx2() {
  __m256d acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_pd(i);
  const __m256d a = _mm256_set1_pd(0.999999), b = _mm256_set1_pd(1e-7);
  for (int it = 0; it < 100000; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_pd(a, acc[i], b);
  }
  double lanes[4], sink = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_storeu_pd(lanes, acc[i]);
    sink += lanes[0] + lanes[1] + lanes[2] + lanes[3];
  }
  volatile double keep = sink;
  (void)keep;
  return 100000.0 * 12 * 4 * 2;
}

double ProcessCpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// utime + stime of another process from /proc/<pid>/stat, in seconds (-1 when unreadable).
double OtherCpuSeconds(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU seconds of each thread of another process (/proc/<pid>/task/<tid>/stat), by tid.
std::map<std::string, double> ThreadCpuSeconds(const std::string& pid) {
  std::map<std::string, double> out;
  std::error_code error;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + pid + "/task", error)) {
    const std::string tid = task.path().filename().string();
    const double seconds = OtherCpuSeconds(pid + "/task/" + tid);
    if (seconds >= 0) out[tid] = seconds;
  }
  return out;
}

int Served(const v1::GenerativeModelSpec& spec, const std::string& target, uint64_t num_samples,
           uint64_t batch_size, const std::string& pid) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::GenerativeService::NewStub(channel);
  {
    grpc::ClientContext context;
    v1::CreateModelRequest request;
    request.set_name("bench-served");
    *request.mutable_spec() = spec;
    v1::CreateModelResponse response;
    grpc::Status status = stub->CreateModel(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "CreateModel: " << status.error_message() << "\n";
      return 2;
    }
  }
  v1::SampleRequest request;
  request.mutable_model()->set_name("bench-served");
  request.set_num_samples(num_samples);
  request.set_seed(1);
  request.set_batch_size(batch_size);
  const double server_start = pid.empty() ? 0 : OtherCpuSeconds(pid);
  const std::map<std::string, double> threads_start =
      pid.empty() ? std::map<std::string, double>{} : ThreadCpuSeconds(pid);
  const double client_start = ProcessCpuSeconds();
  const auto start = Clock::now();
  grpc::ClientContext context;
  auto reader = stub->Sample(&context, request);
  v1::SampleBatch batch;
  uint64_t rows = 0, messages = 0, payload = 0, wire = 0;
  double checksum = 0;
  while (reader->Read(&batch)) {
    rows += batch.x().rows();
    payload += static_cast<uint64_t>(batch.x().values_size()) * sizeof(double);
    wire += batch.ByteSizeLong();
    if (batch.x().values_size() > 0) checksum += batch.x().values(0);
    ++messages;
  }
  grpc::Status status = reader->Finish();
  const double wall = Seconds(start);
  const double client_cpu = ProcessCpuSeconds() - client_start;
  const double server_cpu = pid.empty() ? -1 : OtherCpuSeconds(pid) - server_start;
  double busiest = pid.empty() ? -1 : 0, second = pid.empty() ? -1 : 0;
  if (!pid.empty()) {
    for (const auto& [tid, seconds] : ThreadCpuSeconds(pid)) {
      auto before = threads_start.find(tid);
      const double used = seconds - (before == threads_start.end() ? 0 : before->second);
      if (used > busiest) {
        second = busiest;
        busiest = used;
      } else {
        second = std::max(second, used);
      }
    }
  }
  if (!status.ok()) {
    std::cerr << "Sample: " << status.error_message() << "\n";
    return 2;
  }
  std::cout << "{\"rows_per_second\": " << static_cast<double>(rows) / wall
            << ", \"payload_bytes_per_second\": " << static_cast<double>(payload) / wall
            << ", \"wire_bytes_per_second\": " << static_cast<double>(wire) / wall
            << ", \"rows\": " << rows << ", \"messages\": " << messages
            << ", \"wall_seconds\": " << wall << ", \"client_cpu_seconds\": " << client_cpu
            << ", \"server_cpu_seconds\": " << server_cpu
            << ", \"server_busiest_thread_cpu_seconds\": " << busiest
            << ", \"server_second_thread_cpu_seconds\": " << second
            << ", \"checksum\": " << checksum << "}\n";
  return 0;
}

// The rows of a float64 file, row-major, `columns` per row.
Eigen::MatrixXd ReadRows(const char* path, Eigen::Index columns) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> raw((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  const Eigen::Index n = static_cast<Eigen::Index>(raw.size() / sizeof(double)) / columns;
  RowMatrixXd rows(n, columns);
  std::memcpy(rows.data(), raw.data(), static_cast<size_t>(n * columns) * sizeof(double));
  return rows;
}

// The "fit" command (see the file comment).
int Fit(const char* config_path, const char* rows_path, Eigen::Index columns,
        const char* spec_path) {
  std::ifstream config_in(config_path, std::ios::binary);
  std::stringstream config_bytes;
  config_bytes << config_in.rdbuf();
  v1::FitConfig config;
  if (!config.ParseFromString(config_bytes.str())) {
    std::cerr << "cannot parse " << config_path << "\n";
    return 2;
  }
  const Family* family = DefaultFamilies().FindByFit(config.family_case());
  if (family == nullptr) {
    std::cerr << "no family fits that config\n";
    return 2;
  }
  const Eigen::MatrixXd x = ReadRows(rows_path, columns);
  const double start = CpuSeconds();
  auto fitter = family->make_fitter(config, config.seed());
  if (!fitter.ok()) {
    std::cerr << fitter.status() << "\n";
    return 2;
  }
  absl::Status added = (*fitter)->AddRows(x, 0);
  absl::StatusOr<FitResult> result =
      added.ok() ? (*fitter)->Finish(exec::StopToken()) : absl::StatusOr<FitResult>(added);
  const double seconds = CpuSeconds() - start;
  if (!result.ok()) {
    std::cerr << result.status() << "\n";
    return 2;
  }
  std::ofstream out(spec_path, std::ios::binary);
  out << result->spec.SerializeAsString();
  const v1::FitTrace& trace = result->trace;
  std::cout << std::setprecision(17) << "{\"cpu_seconds\": " << seconds
            << ", \"n_iter\": " << trace.n_iter() << ", \"log_likelihood\": "
            << (trace.log_likelihood_size() > 0
                    ? trace.log_likelihood(trace.log_likelihood_size() - 1)
                    : 0.0)
            << "}\n";
  return 0;
}

int Run(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "peak") {
    const math::SimdPath path = math::BestSimdPath();
    const double budget = std::stod(argv[2]);
    double rate = 0;
    if (path == math::SimdPath::kAvx512) {
      rate = MedianRate(budget, FmaBurstAvx512);
    } else if (path == math::SimdPath::kAvx2) {
      rate = MedianRate(budget, FmaBurstAvx2);
    }
    std::cout << "{\"flops_per_second\": " << rate << ", \"path\": \"" << math::SimdPathName(path)
              << "\"}\n";
    return 0;
  }
  if (argc < 5) {
    std::cerr << "usage: see the file comment\n";
    return 2;
  }
  const std::string command = argv[1];
  if (command == "fit" && argc >= 6) return Fit(argv[2], argv[3], std::stol(argv[4]), argv[5]);
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  v1::GenerativeModelSpec spec;
  if (!spec.ParseFromString(bytes.str())) {
    std::cerr << "cannot parse " << argv[2] << "\n";
    return 2;
  }
  if (command == "served" && argc >= 6) {
    return Served(spec, argv[3], std::stoull(argv[4]), std::stoull(argv[5]),
                  argc >= 7 ? argv[6] : "");
  }
  auto made = MakeModel(spec);
  if (!made.ok()) {
    std::cerr << made.status() << "\n";
    return 2;
  }
  const GenerativeModel& model = **made;
  const int d = model.dimension();
  if (command == "sample") {
    const Eigen::Index batch = std::stol(argv[3]);
    const double budget = std::stod(argv[4]);
    RowMatrixXd x(batch, d);
    uint64_t done = 0;
    double checksum = 0;
    const double rate = MedianRate(budget, [&] {
      model.Sample(1, done, x, nullptr);
      checksum += x(0, 0);
      done += static_cast<uint64_t>(batch);
      return static_cast<double>(batch);
    });
    std::cout << "{\"rows_per_second\": " << rate << ", \"checksum\": " << checksum
              << ", \"simd\": \"" << random::SimdLevelName(random::BestSimdLevel()) << "\"}\n";
    return 0;
  }
  if (command == "loglik") {
    const Eigen::Index s = std::stol(argv[3]);
    const double budget = std::stod(argv[4]);
    RowMatrixXd x(1, d);
    model.Sample(7, 0, x, nullptr);
    Eigen::MatrixXd z(s, model.latent_dim());
    Eigen::VectorXd one(model.latent_dim());
    for (Eigen::Index i = 0; i < s; ++i) {
      random::ItemRng rng(3, 1, static_cast<uint64_t>(i));
      model.SamplePrior(rng, one);
      z.row(i) = one.transpose();
    }
    Eigen::VectorXd out(s);
    const Eigen::VectorXd row = x.row(0).transpose();
    const double rate = MedianRate(budget, [&] {
      model.LogLikelihoodGivenLatent(row, z, out);
      return static_cast<double>(s);
    });
    const auto* mlp = dynamic_cast<const MlpDecoderModel*>(&model);
    std::cout << "{\"evaluations_per_second\": " << rate << ", \"checksum\": " << out.sum()
              << ", \"kernel_path\": \"" << math::SimdPathName(math::SimdPath::kAuto)
              << "\", \"mlp_gram_form\": "
              << (mlp != nullptr && mlp->uses_gram_form() ? "true" : "false") << "}\n";
    return 0;
  }
  if (command == "exact") {
    if (argc < 6) return 2;
    const Eigen::MatrixXd x = ReadRows(argv[3], d);
    const Eigen::Index n = x.rows();
    exec::InlineExecutor executor;
    Eigen::VectorXd log_p;
    const double rate = MedianRate(std::stod(argv[5]), [&] {
      auto got = ExactLogLikelihoodRows(model, x, executor, exec::StopToken());
      if (got.ok()) log_p = *std::move(got);
      return static_cast<double>(n);
    });
    std::ofstream out(argv[4], std::ios::binary);
    out.write(reinterpret_cast<const char*>(log_p.data()),
              static_cast<std::streamsize>(log_p.size() * sizeof(double)));
    std::cout << "{\"rows_per_second\": " << rate << ", \"simd\": \""
              << random::SimdLevelName(random::BestSimdLevel()) << "\"}\n";
    return 0;
  }
  if (command == "estimate") {
    if (argc < 6) return 2;
    EstimateSettings settings;
    const std::string name = argv[3];
    settings.estimator = name == "PRIOR"        ? McEstimator::kPrior
                         : name == "IMPORTANCE" ? McEstimator::kImportance
                                                : McEstimator::kAis;
    settings.num_samples = std::stoull(argv[4]);
    settings.ais.num_temperatures = std::stoi(argv[5]);
    settings.seed = 11;
    RowMatrixXd sampled(1, d);
    model.Sample(5, 0, sampled, nullptr);
    const Eigen::MatrixXd x = sampled;
    absl::Status supported = CheckEstimatorSupported(model, settings.estimator);
    if (!supported.ok()) {
      std::cerr << supported << "\n";
      return 2;
    }
    exec::InlineExecutor executor;
    const auto start = Clock::now();
    auto rows = EstimateRows(model, x, settings, executor, exec::StopToken());
    const double seconds = Seconds(start);
    if (!rows.ok()) {
      std::cerr << rows.status() << "\n";
      return 2;
    }
    const math::WeightStats& stats = (*rows)[0].stats;
    std::cout.precision(17);
    std::cout << "{\"log_likelihood\": " << stats.LogMean()
              << ", \"standard_error\": " << stats.StandardError() << ", \"ess\": " << stats.Ess()
              << ", \"seconds\": " << seconds
              << ", \"exact\": " << (model.tractable() ? model.ExactLogLikelihood(x)(0) : 0.0)
              << "}\n";
    return 0;
  }
  std::cerr << "unknown command " << command << "\n";
  return 2;
}

}  // namespace
}  // namespace maas::generative

int main(int argc, char** argv) { return maas::generative::Run(argc, argv); }

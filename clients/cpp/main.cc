// The `maas` command line client. Only wiring: flags -> cli::CommandArgs + ClientOptions ->
// RunCommand.
//
// The command line is parsed here (not with absl::ParseCommandLine) so that every usage error,
// including an unknown flag or a bad flag value, exits with code 2 and one line pointing to --help
// (one JSON line with --json). Flag values are still parsed by the absl flags themselves
// (CommandLineFlag::ParseFrom).
#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "clients/cpp/cli.h"
#include "clients/cpp/client.h"
#include "clients/cpp/commands.h"
#include "common/tls/credentials.h"
#include "maas_git_version.h"  // MAAS_CLI_VERSION, written at build time

// Global flags.
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "server or gateway address");
ABSL_FLAG(double, timeout, 30, "deadline of each call in seconds (0: none)");
ABSL_FLAG(bool, json, false, "print one JSON document on stdout");
ABSL_FLAG(std::string, auth_token_file, "", "file holding the bearer token");
ABSL_FLAG(std::string, tls_ca_file, "", "PEM CA of the server's certificate: talk TLS");
ABSL_FLAG(std::string, tls_cert_file, "", "PEM client certificate (mutual TLS)");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(int32_t, reconnect_backoff_max_ms, 5000,
          "longest wait between connection attempts to a server that is down, ms (> 0)");
ABSL_FLAG(int32_t, max_message_bytes, 64 * 1024 * 1024,
          "largest message received, bytes (models asks for pages no larger)");
// Command flags (which command accepts which: cli::ValidateCommandArgs).
ABSL_FLAG(bool, all_versions, false, "models: list every version");
ABSL_FLAG(int32_t, page_size, 0,
          "models: list one page of at most this many models (servers give at most 1000)");
ABSL_FLAG(std::string, page_token, "", "models --page_size: the page after the one that gave it");
ABSL_FLAG(bool, allow_partial, false,
          "models: exit 0 when a backend did not answer (default: exit 3, listing incomplete)");
ABSL_FLAG(std::string, model, "", "model name");
ABSL_FLAG(int64_t, model_version, 0, "model version (0: latest; delete: all versions)");
ABSL_FLAG(bool, version, false, "print the CLI's version and exit");
ABSL_FLAG(std::string, type, "", "model type: generative or discriminative (get, delete)");
ABSL_FLAG(uint64_t, num_samples, 0, "samples (sample) or Monte Carlo samples per row (estimate)");
ABSL_FLAG(uint64_t, seed, 0, "seed (default: a fresh one chosen by the server)");
ABSL_FLAG(uint64_t, start_index, 0, "sample: index of the first sample in the seed's stream");
ABSL_FLAG(uint64_t, row_offset, 0,
          "estimate: global index of the first row (shards of a big estimate; default 0)");
ABSL_FLAG(uint64_t, sample_offset, 0,
          "estimate: index of the first Monte Carlo sample per row (shards by samples; default 0)");
ABSL_FLAG(uint32_t, batch_size, 0, "sample: samples per streamed batch (0: server default)");
ABSL_FLAG(bool, latents, false, "sample: also print the latent values");
ABSL_FLAG(std::string, x, "", "estimate: rows inline, e.g. \"1,2;3,4\"");
ABSL_FLAG(std::string, x_file, "", "estimate: CSV file, one row per line");
ABSL_FLAG(std::string, estimator, "", "estimate: exact, prior, importance or ais");
ABSL_FLAG(std::string, name, "", "train, fit: model name");
ABSL_FLAG(std::string, data, "",
          "train, evaluate: TSV file of label<TAB>text lines; fit: CSV file of rows");
ABSL_FLAG(bool, partial, false, "train: continue the latest version (partial_fit)");
ABSL_FLAG(std::string, classes, "", "train --partial: every class label, comma-separated");
ABSL_FLAG(bool, weighted, false, "train, evaluate: --data lines are label<TAB>weight<TAB>text");
ABSL_FLAG(std::string, vectorizer, "count", "train: count or hashing");
ABSL_FLAG(bool, tfidf, false, "train: TF-IDF weighting on top of the vectorizer");
ABSL_FLAG(std::string, analyzer, "word", "train: word, char or char_wb");
ABSL_FLAG(std::string, ngram_range, "1,1", "train: MIN,MAX n-gram sizes");
ABSL_FLAG(bool, lowercase, true, "train: lowercase before tokenising");
ABSL_FLAG(std::string, strip_accents, "none", "train: ascii, unicode or none");
ABSL_FLAG(std::string, stop_words, "", "train: built-in stop word list (english)");
ABSL_FLAG(std::string, stop_words_file, "", "train: stop words, one per line");
ABSL_FLAG(std::string, token_pattern, "", "train: token regex (default (?u)\\b\\w\\w+\\b)");
ABSL_FLAG(bool, binary, false, "train: count each term at most once per text");
ABSL_FLAG(std::string, decode_error, "strict", "train: strict, replace or ignore");
ABSL_FLAG(std::string, min_df, "1",
          "train: min document frequency (integer: count; '.': fraction)");
ABSL_FLAG(std::string, max_df, "1.0",
          "train: max document frequency (integer: count; '.': fraction)");
ABSL_FLAG(uint64_t, max_features, 0, "train: keep the N most frequent terms");
ABSL_FLAG(std::string, vocabulary_file, "", "train: fixed vocabulary, one term per line");
ABSL_FLAG(uint32_t, n_features, 1 << 20, "train: hashing vectorizer columns");
ABSL_FLAG(bool, alternate_sign, true, "train: hashing vectorizer's alternate_sign");
ABSL_FLAG(std::string, norm, "l2",
          "train: tfidf's norm (or hashing's without --tfidf): l1, l2, none");
ABSL_FLAG(std::string, hashing_norm, "l2", "train: the hashing vectorizer's norm under --tfidf");
ABSL_FLAG(bool, use_idf, true, "train: tfidf's use_idf");
ABSL_FLAG(bool, smooth_idf, true, "train: tfidf's smooth_idf");
ABSL_FLAG(bool, sublinear_tf, false, "train: tfidf's sublinear_tf");
ABSL_FLAG(std::string, classifier, "multinomial_nb",
          "train: multinomial_nb, complement_nb or bernoulli_nb");
ABSL_FLAG(double, alpha, 1.0, "train: additive smoothing");
ABSL_FLAG(bool, force_alpha, true, "train: use alpha as given (false: at least 1e-10)");
ABSL_FLAG(bool, fit_prior, true, "train: learn class priors (false: uniform)");
ABSL_FLAG(std::string, class_prior, "",
          "train: fixed class priors in sorted class order, P1,P2,...");
ABSL_FLAG(std::string, binarize, "0.0", "train: bernoulli_nb threshold, or none");
ABSL_FLAG(bool, complement_norm, false, "train: complement_nb's norm");
ABSL_FLAG(
    bool, integer_labels, false,
    "train: the labels (and --classes) are int64 integers in canonical decimal, classes ordered "
    "numerically as scikit-learn orders integer y (label_type LABEL_TYPE_INT64); "
    "--nointeger_labels: string labels ordered by code point");
ABSL_FLAG(uint32_t, top_k, 0, "classify: only the k most probable classes (0: all)");
ABSL_FLAG(std::string, text_file, "", "classify: file with one text per line");
ABSL_FLAG(std::string, family, "",
          "fit: uniform, gaussian_mixture, ppca, factor_analysis, bernoulli_mixture");
ABSL_FLAG(uint32_t, n_components, 0, "fit: mixture components (0: the service's default, 1)");
ABSL_FLAG(std::string, covariance_type, "", "fit: gaussian_mixture full, diag or spherical");
ABSL_FLAG(uint32_t, latent_dim, 0, "fit: ppca / factor_analysis latent dimension");
ABSL_FLAG(double, tol, 0, "fit: convergence tolerance (not given: the family's default)");
ABSL_FLAG(uint32_t, max_iter, 0, "fit: maximum iterations (0: the family's default)");
ABSL_FLAG(uint32_t, n_init, 0, "fit: gaussian_mixture initialisations (0: 1)");
ABSL_FLAG(double, reg_covar, 0,
          "fit: gaussian_mixture covariance regularisation (not given: 1e-6)");
ABSL_FLAG(std::string, init, "",
          "fit: gaussian_mixture kmeans, k-means++, random, random_from_data");
ABSL_FLAG(double, min_probability, 0, "fit: bernoulli_mixture clip (not given: 1e-6)");

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;
// A listing printed without the models of a backend that did not answer (models, unless
// --allow_partial): a script that checks the status alone must not take it for the whole listing.
constexpr int kExitIncomplete = 3;

// Whether --json was given (the last of --json, --json=BOOL, --nojson before a "--" wins), known
// before the command line is parsed so that even a usage error can be one JSON line.
bool JsonRequested(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
    if (arg == "json") {
      json = true;
    } else if (arg == "nojson") {
      json = false;
    } else if (absl::ConsumePrefix(&arg, "json=")) {
      bool value = false;
      json = absl::ParseFlag(std::string(arg), &value, nullptr) && value;
    }
  }
  return json;
}

// One line: the problem and where help is ("maas COMMAND --help" for a known command), or with
// --json one JSON line {"error":{"code":"INVALID_ARGUMENT","message":"usage error: ..."}}.
int UsageError(const std::string& message, bool json, const std::string& command = "") {
  const std::string help = absl::StrCat(
      "see 'maas ", maas::client::cli::IsCommand(command) ? command + " " : "", "--help'");
  if (json) {
    std::cerr << "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":"
              << maas::client::cli::JsonQuote(
                     absl::StrCat("usage error: ", message, " (", help, ")"))
              << "}}\n";
  } else {
    std::cerr << "maas: usage error: " << maas::client::cli::EscapeForTerminal(message) << " ("
              << help << ")\n";
  }
  return kExitUsage;
}

// A failed command: "maas: CODE: message", or one JSON line with --json.
int Failure(const absl::Status& status, bool json) {
  const std::string code(absl::StatusCodeToString(status.code()));
  if (json) {
    std::cerr << "{\"error\":{\"code\":" << maas::client::cli::JsonQuote(code)
              << ",\"message\":" << maas::client::cli::JsonQuote(status.message()) << "}}\n";
  } else {
    std::cerr << "maas: " << code << ": " << maas::client::cli::EscapeForTerminal(status.message())
              << "\n";
  }
  return kExitError;
}

// Parses argv into flag values (set through the absl flags) and positional arguments.
absl::Status ParseArgs(int argc, char** argv, std::vector<std::string>* positional,
                       std::set<std::string>* flags_set, bool* help) {
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional->push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpfull") {
      *help = true;
      continue;
    }
    absl::string_view body = arg;
    if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
    const size_t eq = body.find('=');
    const std::string name(body.substr(0, eq));
    const bool has_value = eq != absl::string_view::npos;
    std::string value = has_value ? std::string(body.substr(eq + 1)) : "";

    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string flag_name = name;
    if (flag == nullptr && absl::StartsWith(name, "no") && !has_value) {
      absl::CommandLineFlag* negated = absl::FindCommandLineFlag(name.substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        flag = negated;
        flag_name = name.substr(2);
        value = "false";
      }
    } else if (flag != nullptr && flag->IsOfType<bool>() && !has_value) {
      value = "true";
    } else if (flag != nullptr && !has_value) {
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = argv[++i];
    }
    if (flag == nullptr || flag->IsRetired()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", value, "' for --", flag_name, ": ", error));
    }
    flags_set->insert(flag_name);
  }
  return absl::OkStatus();
}

// Texts are sent as they are (the model's decode_error decides what bytes that are not UTF-8
// become), and protobuf logs each such string field it serializes: stderr stays for the CLI's own
// messages. Other protobuf messages are printed as protobuf prints them.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (message.find("contains invalid UTF-8 data") != std::string::npos) return;
  static const char* const kLevels[] = {"INFO", "WARNING", "ERROR", "FATAL"};
  std::cerr << "[libprotobuf " << kLevels[level] << " " << file << ":" << line << "] " << message
            << std::endl;
}

// gRPC core's own log lines (a failed TLS handshake, a DNS failure, ...) would come before the
// CLI's error line and break the one-line (one JSON line with --json) error contract; the error
// the call returns says what went wrong. They are dropped unless the user asks for them with
// GRPC_VERBOSITY or GRPC_TRACE, and always with --json.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

void QuietGrpcCore(bool json) {
  if (json || (std::getenv("GRPC_VERBOSITY") == nullptr && std::getenv("GRPC_TRACE") == nullptr)) {
    gpr_set_log_function(&DropGrpcLog);
  }
}

}  // namespace

int main(int argc, char** argv) {
  google::protobuf::SetLogHandler(&ProtobufLog);
  const bool json_requested = JsonRequested(argc, argv);
  QuietGrpcCore(json_requested);
  namespace cli = maas::client::cli;
  std::vector<std::string> positional;
  cli::CommandArgs args;
  bool help = false;
  const absl::Status parsed = ParseArgs(argc, argv, &positional, &args.flags_set, &help);
  const std::string command = positional.empty() ? "" : positional[0];
  if (help || command == "help") {
    // "maas COMMAND --help" and "maas help COMMAND": that command only.
    const std::string about =
        command == "help" ? (positional.size() > 1 ? positional[1] : "") : command;
    std::cout << (about.empty() ? cli::UsageText() : cli::CommandUsage(about));
    return 0;
  }
  if (!parsed.ok()) return UsageError(std::string(parsed.message()), json_requested, command);
  if (absl::GetFlag(FLAGS_version)) {
    std::cout << "maas " << MAAS_CLI_VERSION << " (protocol maas.*.v1)\n";
    return 0;
  }
  if (positional.empty()) return UsageError("no command given", json_requested);
  args.command = positional[0];
  args.positional.assign(positional.begin() + 1, positional.end());
  args.json = absl::GetFlag(FLAGS_json);
  args.all_versions = absl::GetFlag(FLAGS_all_versions);
  args.page_size = absl::GetFlag(FLAGS_page_size);
  args.page_token = absl::GetFlag(FLAGS_page_token);
  args.allow_partial = absl::GetFlag(FLAGS_allow_partial);
  args.model = absl::GetFlag(FLAGS_model);
  args.version = absl::GetFlag(FLAGS_model_version);
  args.type = absl::GetFlag(FLAGS_type);
  args.num_samples = absl::GetFlag(FLAGS_num_samples);
  if (args.flags_set.count("seed") > 0) args.seed = absl::GetFlag(FLAGS_seed);
  args.start_index = absl::GetFlag(FLAGS_start_index);
  args.row_offset = absl::GetFlag(FLAGS_row_offset);
  args.sample_offset = absl::GetFlag(FLAGS_sample_offset);
  args.batch_size = absl::GetFlag(FLAGS_batch_size);
  args.latents = absl::GetFlag(FLAGS_latents);
  args.x = absl::GetFlag(FLAGS_x);
  args.x_file = absl::GetFlag(FLAGS_x_file);
  args.estimator = absl::GetFlag(FLAGS_estimator);
  args.name = absl::GetFlag(FLAGS_name);
  args.data = absl::GetFlag(FLAGS_data);
  args.partial = absl::GetFlag(FLAGS_partial);
  cli::CommandArgs::Train& train = args.train;
  train.classes = absl::GetFlag(FLAGS_classes);
  train.weighted = absl::GetFlag(FLAGS_weighted);
  train.vectorizer = absl::GetFlag(FLAGS_vectorizer);
  train.tfidf = absl::GetFlag(FLAGS_tfidf);
  train.analyzer = absl::GetFlag(FLAGS_analyzer);
  train.ngram_range = absl::GetFlag(FLAGS_ngram_range);
  train.lowercase = absl::GetFlag(FLAGS_lowercase);
  train.strip_accents = absl::GetFlag(FLAGS_strip_accents);
  train.stop_words = absl::GetFlag(FLAGS_stop_words);
  train.stop_words_file = absl::GetFlag(FLAGS_stop_words_file);
  train.token_pattern = absl::GetFlag(FLAGS_token_pattern);
  train.binary = absl::GetFlag(FLAGS_binary);
  train.decode_error = absl::GetFlag(FLAGS_decode_error);
  train.min_df = absl::GetFlag(FLAGS_min_df);
  train.max_df = absl::GetFlag(FLAGS_max_df);
  train.max_features = absl::GetFlag(FLAGS_max_features);
  train.vocabulary_file = absl::GetFlag(FLAGS_vocabulary_file);
  train.n_features = absl::GetFlag(FLAGS_n_features);
  train.alternate_sign = absl::GetFlag(FLAGS_alternate_sign);
  train.norm = absl::GetFlag(FLAGS_norm);
  train.hashing_norm = absl::GetFlag(FLAGS_hashing_norm);
  train.use_idf = absl::GetFlag(FLAGS_use_idf);
  train.smooth_idf = absl::GetFlag(FLAGS_smooth_idf);
  train.sublinear_tf = absl::GetFlag(FLAGS_sublinear_tf);
  train.classifier = absl::GetFlag(FLAGS_classifier);
  train.alpha = absl::GetFlag(FLAGS_alpha);
  train.force_alpha = absl::GetFlag(FLAGS_force_alpha);
  train.fit_prior = absl::GetFlag(FLAGS_fit_prior);
  train.class_prior = absl::GetFlag(FLAGS_class_prior);
  train.binarize = absl::GetFlag(FLAGS_binarize);
  train.complement_norm = absl::GetFlag(FLAGS_complement_norm);
  train.integer_labels = absl::GetFlag(FLAGS_integer_labels);
  args.top_k = absl::GetFlag(FLAGS_top_k);
  args.text_file = absl::GetFlag(FLAGS_text_file);
  args.family = absl::GetFlag(FLAGS_family);
  args.n_components = absl::GetFlag(FLAGS_n_components);
  args.covariance_type = absl::GetFlag(FLAGS_covariance_type);
  args.latent_dim = absl::GetFlag(FLAGS_latent_dim);
  args.tol = absl::GetFlag(FLAGS_tol);
  args.max_iter = absl::GetFlag(FLAGS_max_iter);
  args.n_init = absl::GetFlag(FLAGS_n_init);
  args.reg_covar = absl::GetFlag(FLAGS_reg_covar);
  args.init = absl::GetFlag(FLAGS_init);
  args.min_probability = absl::GetFlag(FLAGS_min_probability);
  if (absl::Status status = cli::ValidateCommandArgs(args); !status.ok()) {
    return UsageError(std::string(status.message()), args.json, args.command);
  }
  const double timeout = absl::GetFlag(FLAGS_timeout);
  if (!(timeout >= 0)) return UsageError("--timeout must be >= 0 seconds", args.json);
  const int32_t max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (max_message_bytes <= 0) return UsageError("--max_message_bytes must be > 0", args.json);
  const int32_t reconnect_backoff_max_ms = absl::GetFlag(FLAGS_reconnect_backoff_max_ms);
  if (reconnect_backoff_max_ms <= 0) {
    return UsageError("--reconnect_backoff_max_ms must be > 0", args.json);
  }
  const bool json = args.json;

  maas::client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = timeout > 0 ? absl::Seconds(timeout) : absl::InfiniteDuration();
  options.max_message_bytes = max_message_bytes;
  options.reconnect_backoff_max = absl::Milliseconds(reconnect_backoff_max_ms);
  const std::string token_file = absl::GetFlag(FLAGS_auth_token_file);
  if (!token_file.empty()) {
    absl::StatusOr<std::string> token = cli::ReadFile(token_file);
    if (!token.ok()) return Failure(token.status(), json);
    if (absl::StripAsciiWhitespace(*token).empty()) {
      return Failure(
          absl::InvalidArgumentError(absl::StrCat("auth token file '", token_file, "' is empty")),
          json);
    }
    options.auth_token = std::string(absl::StripAsciiWhitespace(*token));
    // gRPC aborts the process on a header value it cannot send: refuse the token here, naming
    // the file.
    if (const absl::Status valid = maas::client::CheckAuthToken(options.auth_token); !valid.ok()) {
      return Failure(absl::InvalidArgumentError(
                         absl::StrCat("auth token file '", token_file, "': ", valid.message())),
                     json);
    }
  }

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      maas::tls::ChannelCredentialsFromFiles(
          absl::GetFlag(FLAGS_tls_ca_file), absl::GetFlag(FLAGS_tls_cert_file),
          absl::GetFlag(FLAGS_tls_key_file),
          {"--tls_ca_file", "--tls_cert_file", "--tls_key_file"});
  if (!credentials.ok()) return Failure(credentials.status(), json);
  options.credentials = *std::move(credentials);

  maas::client::Client client(options);
  maas::client::CommandOutcome outcome;
  const absl::Status status =
      maas::client::RunCommand(client, args, std::cout, std::cerr, &outcome);
  std::cout.flush();
  if (!status.ok()) return Failure(status, json);
  if (outcome.incomplete && !args.allow_partial) return kExitIncomplete;
  return 0;
}

// Transport-free logic of the `maas` CLI: input parsing (matrices, training files, text files), a
// small JSON writer and the output formats of every command. No gRPC here; protobuf messages are
// the contract.
//
// Output formats (documented for users in clients/cpp/README.md):
// - Human numbers in tables use 6 significant digits ("%.6g"); sample CSV rows and every JSON
// number use
//   the shortest decimal that round-trips to the same double, so they are exact.
// - JSON: non-finite numbers are written as the strings "NaN", "Infinity" and "-Infinity" (the
// proto3
//   JSON mapping's convention, so `maas get --json` and the other commands agree); null means "not
//   set". Integers (versions, seeds, counts) are JSON numbers. Invalid UTF-8 in strings becomes
//   U+FFFD.
#ifndef MAAS_CLIENTS_CPP_CLI_H_
#define MAAS_CLIENTS_CPP_CLI_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "maas/common/v1/common.pb.h"
#include "maas/discriminative/v1/discriminative.pb.h"
#include "maas/generative/v1/generative.pb.h"

namespace maas::client::cli {

// ---------------------------------------------------------------------------------------------------------
// JSON

// Shortest decimal representation that parses back to exactly `value` ("1", "0.1", "1e+300");
// "nan", "inf", "-inf" for non-finite values.
std::string FormatDouble(double value);

// `value` as a quoted JSON string: '"' and '\' are escaped, control characters U+0000..U+001F
// become \b \f \n \r \t or \u00XX, invalid UTF-8 bytes become U+FFFD; everything else is copied.
std::string JsonQuote(absl::string_view value);

// Builds one JSON document. Commas and colons are placed automatically:
//   JsonWriter w;
//   w.BeginObject().Key("rows").BeginArray().Double(1.5).EndArray().EndObject();
//   w.str() == R"({"rows":[1.5]})"
// Misuse (a value without a key inside an object, unbalanced End*) is a programming error and is
// not diagnosed beyond producing invalid JSON.
class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(absl::string_view key);
  JsonWriter& String(absl::string_view value);
  // Finite: a JSON number; NaN/±inf: the strings "NaN", "Infinity", "-Infinity".
  JsonWriter& Double(double value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Inserts an already serialized JSON value (e.g. from MessageToJsonString) as is.
  JsonWriter& Raw(absl::string_view json);

  const std::string& str() const { return out_; }

 private:
  void BeforeValue();

  std::string out_;
  // One entry per open object/array: true until its first element is written.
  std::vector<bool> first_;
  bool after_key_ = false;
};

// ---------------------------------------------------------------------------------------------------------
// Input

// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
// U+10FFFF).
bool IsValidUtf8(absl::string_view text);

// Reads a whole file. NOT_FOUND / PERMISSION_DENIED-style errors name the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Parses a matrix written inline: rows separated by ';', columns by ','; spaces around numbers are
// ignored. "1,2;3,4" -> 2 x 2. Every row needs the same number of columns; values must be finite
// numbers (NaN and Inf are rejected). INVALID_ARGUMENT with the row and column on error.
absl::StatusOr<common::v1::Matrix> ParseMatrix(absl::string_view text);

// Parses CSV text: one row per line, columns separated by ','. Blank lines and lines starting with
// '#' are skipped (so `maas sample` output can be read back). CRLF line ends are accepted. Same
// value rules as ParseMatrix; errors name the line number (1-based).
absl::StatusOr<common::v1::Matrix> ParseMatrixCsv(absl::string_view content);

// Parses a training file: one example per line, "label<TAB>text" (the text is everything after the
// first tab and may be empty). Blank lines are skipped, CRLF and a leading UTF-8 BOM accepted.
// Texts are kept as they are (the service applies the model's decode_error to bytes that are not
// UTF-8). INVALID_ARGUMENT naming the line when a line has no tab or an empty label or a label
// that is not UTF-8, or when the file has no examples.
absl::StatusOr<std::vector<discriminative::v1::LabeledText>> ParseTrainingTsv(
    absl::string_view content);

// One text per line (blank lines skipped, CRLF and a leading BOM accepted), kept as they are.
absl::StatusOr<std::vector<std::string>> ParseTextLines(absl::string_view content);

// "exact" | "prior" | "importance" | "ais" (case-insensitive); "" -> ESTIMATOR_UNSPECIFIED.
absl::StatusOr<generative::v1::Estimator> ParseEstimator(absl::string_view name);

// "generative" | "discriminative" (case-insensitive); "" -> MODEL_TYPE_UNSPECIFIED.
absl::StatusOr<common::v1::ModelType> ParseModelType(absl::string_view name);

// ---------------------------------------------------------------------------------------------------------
// Output. Every Format* function returns the complete text, ending in '\n'. In human output, the
// strings that come from the server or the command line (model names, families, class labels,
// backends, messages) are passed through EscapeForTerminal (class labels cut at 100 bytes); JSON
// output has them JSON-escaped and whole.

// Columns on a terminal of the UTF-8 `text`: one per code point, two for East Asian wide and
// fullwidth characters (CJK, Hangul, fullwidth forms, emoji), none for combining diacritics and
// zero-width spaces, one per byte that is not UTF-8. An approximation of wcwidth() without the
// locale.
size_t DisplayWidth(absl::string_view text);

// Left-aligned columns separated by two spaces, no trailing spaces; columns are aligned by
// DisplayWidth, so non-ASCII labels line up. `header` may be empty (no header line).
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// "generative" / "discriminative" / "unspecified".
std::string ModelTypeName(common::v1::ModelType type);

// RFC 3339 UTC with second precision ("2024-05-01T12:00:00Z"); "-" when unset (all zero).
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp);

// `maas models`: NAME VERSION TYPE FAMILY CREATED, or {"models":[{name, version, type, family,
// created_at, description, dimension, size_bytes, labels}], "missing_backends":["..."],
// "unreadable_versions":[{name, version, type, code, message}], "next_page_token":"..."}.
std::string FormatModels(const common::v1::ListModelsResponse& response, bool json);

// The human form's warnings about a partial listing (for stderr, so the table stays parseable):
// one line per backend that did not answer and per version that cannot be read, and, for one page
// of a listing (--page_size) that more may follow, the --page_token of the next page. Empty when
// the listing is complete.
std::string FormatModelWarnings(const common::v1::ListModelsResponse& response);

// `maas sample`, human: a comment line, then one CSV line per sample (x columns, then latent
// columns).
//   # model=NAME version=V seed=S start_index=I num_samples=N x_cols=D latent_cols=L
// The header comes from the first batch; rows are formatted per batch so a long stream is never
// held. INVALID_ARGUMENT when a batch's matrices are malformed (values != rows*cols, latent rows !=
// x rows).
std::string FormatSampleHeader(absl::string_view model, uint64_t num_samples,
                               const generative::v1::SampleBatch& first_batch);
absl::StatusOr<std::string> FormatSampleRows(const generative::v1::SampleBatch& batch);
// `maas sample --json`: {"model", "model_version", "seed", "start_index", "num_samples", "x":
// [[...]], "latents": [[...]] (empty array when none)}.
absl::StatusOr<std::string> FormatSamplesJson(
    absl::string_view model, uint64_t num_samples,
    const std::vector<generative::v1::SampleBatch>& batches);

// `maas estimate`: "# model=NAME version=V estimator=E seed=S", then ROW LOG_LIKELIHOOD
// STANDARD_ERROR ESS EXACT ("-" when the exact value is not available); ROW is the global row
// index (row_offset + i). JSON: {"model", "model_version", "estimator", "seed", "row_offset",
// "sample_offset", "rows": [{"row", "log_likelihood", "standard_error", "ess", "num_samples",
// "pareto_k", "exact_log_likelihood" (null when not available), "ais_acceptance_rate",
// "statistics": {"count", "log_sum_w", "log_sum_w2"}}]}: the statistics of shards (by rows or by
// samples) merge exactly into those of one big call (log-sum-exp of the log sums, sum of counts).
std::string FormatEstimate(absl::string_view model,
                           const generative::v1::EstimateLogLikelihoodResponse& response, bool json,
                           uint64_t row_offset = 0, uint64_t sample_offset = 0);

// `maas fit`: name, version, family, dimension, rows, iterations, converged, log_likelihood (the
// last mean log-likelihood per row of the trace), seed as two columns. JSON: {"name", "version",
// "family", "dimension", "num_rows", "n_iter", "converged", "seed", "log_likelihood": [...]}.
std::string FormatFit(const generative::v1::FitModelResponse& response, bool json);

// `maas train`: name, version, documents, classes ("2: ham, spam"), features as two columns. JSON:
// {"name", "version", "family", "documents", "features", "classes": [...], "class_count": [...]}.
std::string FormatTrain(const discriminative::v1::TrainResponse& response, bool json);

// `maas evaluate`: a two-column summary (model, version, documents, accuracy, macro F1, weighted
// F1, log loss), then CLASS PRECISION RECALL F1 SUPPORT (one row per class, in class order), then
// the confusion matrix as a table (rows: true class, columns: predicted class, labelled). JSON:
// {"model", "model_version", "num_documents", "accuracy", "macro_f1", "weighted_f1", "log_loss",
// "classes": [{"label", "precision", "recall", "f1", "support"}], "confusion_matrix": [[...]]}
// (the EvaluateResponse's fields and names; the matrix as rows). INVALID_ARGUMENT when the
// confusion matrix from the server is not classes x classes.
absl::StatusOr<std::string> FormatEvaluate(absl::string_view model,
                                           const discriminative::v1::EvaluateResponse& response,
                                           bool json);

// `maas classify`: INDEX LABEL PROBABILITIES ("spam=0.93 ham=0.07"). JSON: {"model_version",
// "results": [{"text", "label", "scores": [{"label", "probability", "log_probability"}]}]}.
// `texts` are the request's texts (echoed in JSON only); results beyond them get "" as text.
std::string FormatClassify(const std::vector<std::string>& texts,
                           const discriminative::v1::ClassifyResponse& response, bool json);

// `maas delete`: "deleted NAME (TYPE) versions: 1, 2". JSON: {"name", "type", "deleted_versions":
// [...]}.
std::string FormatDelete(absl::string_view name, common::v1::ModelType type,
                         const common::v1::DeleteModelResponse& response, bool json);

// `maas get`: "# <full message type name>" then the protobuf text format (parseable back), or the
// proto3 JSON mapping with the .proto field names (google::protobuf::util::MessageToJsonString).
absl::StatusOr<std::string> FormatMessage(const google::protobuf::Message& message, bool json);

// ---------------------------------------------------------------------------------------------------------
// Command line (the flags themselves are defined and parsed in main.cc only).

// Everything a command needs, filled from the flags by main.cc.
struct CommandArgs {
  // models | sample | estimate | fit | train | evaluate | classify | get | delete.
  std::string command;
  // Arguments after the command (classify: the texts).
  std::vector<std::string> positional;
  // Names of the flags given on the command line (without dashes).
  std::set<std::string> flags_set;

  bool json = false;
  bool all_versions = false;
  // models: one page (--page_size given) of at most page_size entries, after page_token's.
  int32_t page_size = 0;
  std::string page_token;
  // models: exit 0 (not 3) when a backend did not answer (the listing is incomplete).
  bool allow_partial = false;
  std::string model;
  int64_t version = 0;
  std::string type;  // "", "generative" or "discriminative"
  uint64_t num_samples = 0;
  std::optional<uint64_t> seed;
  uint64_t start_index = 0;
  uint64_t row_offset = 0;     // estimate: global index of the first row (sharding)
  uint64_t sample_offset = 0;  // estimate: index of the first Monte Carlo sample (sharding)
  uint32_t batch_size = 0;
  bool latents = false;
  std::string x;
  std::string x_file;
  std::string estimator;
  std::string name;
  std::string data;
  bool partial = false;
  uint32_t top_k = 0;
  std::string text_file;
  // fit: the family and its hyperparameters (each applies only to some families; see
  // BuildFitConfig).
  std::string family;
  uint32_t n_components = 0;
  std::string covariance_type;
  uint32_t latent_dim = 0;
  double tol = 0;
  uint32_t max_iter = 0;
  uint32_t n_init = 0;
  double reg_covar = 0;
  std::string init;
  double min_probability = 0;
  // train: the vectorizer and classifier options (scikit-learn's names; see BuildTrainConfig).
  // Only the flags named in flags_set are used.
  struct Train {
    std::string vectorizer;  // count | hashing
    bool tfidf = false;
    std::string analyzer;     // word | char | char_wb
    std::string ngram_range;  // "MIN,MAX" or "N"
    bool lowercase = true;
    std::string strip_accents;  // ascii | unicode | none
    std::string stop_words;     // english
    std::string stop_words_file;
    std::string token_pattern;
    bool binary = false;
    std::string decode_error;  // strict | replace | ignore
    std::string min_df;        // integer: documents; with '.' or 'e': a fraction
    std::string max_df;
    uint64_t max_features = 0;
    std::string vocabulary_file;
    uint32_t n_features = 0;
    bool alternate_sign = true;
    std::string norm;          // l1 | l2 | none: tfidf's with --tfidf, else hashing's
    std::string hashing_norm;  // l1 | l2 | none: the hashing vectorizer's under --tfidf
    bool use_idf = true;
    bool smooth_idf = true;
    bool sublinear_tf = false;
    std::string classifier;  // multinomial_nb | complement_nb | bernoulli_nb
    double alpha = 1.0;
    bool force_alpha = true;
    bool fit_prior = true;
    std::string class_prior;  // "0.2,0.8"
    std::string binarize;     // a threshold >= 0, or none
    bool complement_norm = false;
    std::string classes;          // "a,b,c"
    bool integer_labels = false;  // TrainConfig.label_type: LABEL_TYPE_INT64 (false: STRING)
    bool weighted = false;        // train and evaluate: 'label<TAB>weight<TAB>text' lines
  } train;
};

// The FitConfig of `maas fit`: --name, --seed, --family (uniform | gaussian_mixture | ppca |
// factor_analysis | bernoulli_mixture) and the hyperparameter flags given, which must apply to the
// family: gaussian_mixture: n_components, covariance_type (full|diag|spherical), tol, reg_covar,
// max_iter, n_init, init (kmeans|k-means++|random|random_from_data); ppca: latent_dim (required);
// factor_analysis: latent_dim (required), tol, max_iter; bernoulli_mixture: n_components, tol,
// max_iter, min_probability. Flags not given keep the service's defaults. INVALID_ARGUMENT (a usage
// error) otherwise.
absl::StatusOr<generative::v1::FitConfig> BuildFitConfig(const CommandArgs& args);

// The TrainConfig of `maas train` from --name, --partial and the vectorizer / classifier flags
// given: --vectorizer count|hashing, --tfidf [--norm --use_idf --smooth_idf --sublinear_tf],
// text options (--analyzer, --ngram_range, --lowercase, --strip_accents, --stop_words,
// --token_pattern, --binary, --decode_error), count only (--min_df, --max_df, --max_features),
// hashing only (--n_features, --alternate_sign, --norm / --hashing_norm), --classifier
// multinomial_nb|complement_nb|bernoulli_nb with --alpha, --force_alpha, --fit_prior,
// --class_prior, --binarize (bernoulli_nb), --complement_norm (complement_nb), --classes and
// --integer_labels (TrainConfig.label_type: LABEL_TYPE_INT64, or with --nointeger_labels
// LABEL_TYPE_STRING; not given: unset, so string labels, or with --partial the continued
// version's). Without any vectorizer (classifier) flag the config leaves the vectorizer
// (classifier) unset: the service's default, or with --partial the continued version's. Flags that
// do not apply to the chosen kinds and bad values are INVALID_ARGUMENT (a usage error).
// --vocabulary_file and
// --stop_words_file are read by AddTrainWordLists.
absl::StatusOr<discriminative::v1::TrainConfig> BuildTrainConfig(const CommandArgs& args);
// Reads --vocabulary_file and --stop_words_file (one term per line, UTF-8; blank lines skipped,
// CRLF and a BOM accepted) into the config built by BuildTrainConfig. Errors name the file and
// line.
absl::Status AddTrainWordLists(const CommandArgs& args, discriminative::v1::TrainConfig* config);
// A training file with weights: one example per line, "label<TAB>weight<TAB>text" (weight a finite
// number >= 0); otherwise as ParseTrainingTsv.
absl::StatusOr<std::vector<discriminative::v1::LabeledText>> ParseWeightedTrainingTsv(
    absl::string_view content);

// Flags every command accepts.
const std::set<std::string>& GlobalFlags();

// Checks the command exists, that every given flag applies to it, that required flags are there and
// that exclusive ones are not combined. INVALID_ARGUMENT with a message for the user otherwise (a
// usage error: main prints it on one line pointing to --help and exits 2).
absl::Status ValidateCommandArgs(const CommandArgs& args);

// True for the name of a command (models, sample, ...).
bool IsCommand(absl::string_view command);

// The help text (commands, flags, exit codes).
std::string UsageText();
// The usage of one command (its block of UsageText()); the whole text for an unknown command.
std::string CommandUsage(absl::string_view command);
// `text` made safe for a terminal line: control characters (C0, DEL and the C1 controls
// U+0080..U+009F) and invalid UTF-8 bytes become \xNN, and text beyond `max_bytes` is cut with
// "... (N more bytes)".
std::string EscapeForTerminal(absl::string_view text, size_t max_bytes = 1000);

}  // namespace maas::client::cli

#endif  // MAAS_CLIENTS_CPP_CLI_H_

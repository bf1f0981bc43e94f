#include "clients/cpp/cli.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status/status_macros.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace maas::client::cli {
namespace {

namespace cv1 = ::maas::common::v1;
namespace dv1 = ::maas::discriminative::v1;
namespace gv1 = ::maas::generative::v1;

// Length of the well-formed UTF-8 sequence starting at text[i], or 0 when it is malformed.
size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len;
  uint32_t min_code_point;
  uint32_t code_point;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    min_code_point = 0x80;
    code_point = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    min_code_point = 0x800;
    code_point = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    min_code_point = 0x10000;
    code_point = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xC0) != 0x80) return 0;
    code_point = (code_point << 6) | (b & 0x3F);
  }
  if (code_point < min_code_point) return 0;                   // overlong
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return 0;  // surrogate
  if (code_point > 0x10FFFF) return 0;                         // out of range
  return len;
}

// Splits content into lines (accepting "\n" and "\r\n"), dropping a leading UTF-8 BOM.
std::vector<absl::string_view> SplitLines(absl::string_view content) {
  absl::ConsumePrefix(&content, "\xEF\xBB\xBF");
  std::vector<absl::string_view> lines = absl::StrSplit(content, '\n');
  for (absl::string_view& line : lines) absl::ConsumeSuffix(&line, "\r");
  return lines;
}

bool IsBlank(absl::string_view line) { return absl::StripAsciiWhitespace(line).empty(); }

// Parses one finite double; `where` prefixes the error message.
absl::StatusOr<double> ParseFiniteDouble(absl::string_view token, absl::string_view where) {
  absl::string_view text = absl::StripAsciiWhitespace(token);
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty value"));
  absl::string_view digits = text;
  absl::ConsumePrefix(&digits, "+");
  double value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": '", text, "' is out of the range of a double"));
  }
  if (error != std::errc() || end != digits.data() + digits.size() ||
      (digits.size() < text.size() && (digits.empty() || digits[0] == '-'))) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": '", text, "' is not a number"));
  }
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": '", text, "' is not a finite number (NaN and Inf are not allowed in data)"));
  }
  return value;
}

// Appends the comma-separated values of one row to `matrix`, checking the width. `where` names the
// row.
absl::Status AppendRow(absl::string_view row, const std::string& where, cv1::Matrix* matrix) {
  const std::vector<absl::string_view> cells = absl::StrSplit(row, ',');
  if (matrix->rows() > 0 && cells.size() != matrix->cols()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has ", cells.size(),
                                                   " columns but the first row has ",
                                                   matrix->cols(), " (ragged rows)"));
  }
  for (size_t c = 0; c < cells.size(); ++c) {
    MAAS_ASSIGN_OR_RETURN(const double value,
                          ParseFiniteDouble(cells[c], absl::StrCat(where, ", column ", c + 1)));
    matrix->add_values(value);
  }
  matrix->set_cols(static_cast<uint32_t>(cells.size()));
  matrix->set_rows(matrix->rows() + 1);
  return absl::OkStatus();
}

std::string HumanDouble(double value) { return absl::StrFormat("%.6g", value); }

// A class label in human output: escaped for the terminal, at most 100 bytes.
std::string EscapeLabel(absl::string_view label) { return EscapeForTerminal(label, 100); }

std::string LowerEnumName(const std::string& name) { return absl::AsciiStrToLower(name); }

// Checks rows * cols == values.
absl::Status CheckMatrix(const cv1::Matrix& m, absl::string_view what) {
  if (static_cast<uint64_t>(m.rows()) * m.cols() != static_cast<uint64_t>(m.values_size())) {
    return absl::InvalidArgumentError(absl::StrCat("malformed ", what,
                                                   " matrix from the server: ", m.rows(), " x ",
                                                   m.cols(), " but ", m.values_size(), " values"));
  }
  return absl::OkStatus();
}

absl::Status CheckBatch(const gv1::SampleBatch& batch) {
  MAAS_RETURN_IF_ERROR(CheckMatrix(batch.x(), "sample"));
  MAAS_RETURN_IF_ERROR(CheckMatrix(batch.latents(), "latent"));
  if (batch.latents().values_size() > 0 && batch.latents().rows() != batch.x().rows()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed sample batch from the server: ", batch.x().rows(), " samples but ",
                     batch.latents().rows(), " latent rows"));
  }
  return absl::OkStatus();
}

// Writes the rows of `m` as arrays of numbers.
void WriteRows(const cv1::Matrix& m, JsonWriter* w) {
  for (uint32_t r = 0; r < m.rows(); ++r) {
    w->BeginArray();
    for (uint32_t c = 0; c < m.cols(); ++c) w->Double(m.values(r * m.cols() + c));
    w->EndArray();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// JSON

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string JsonQuote(absl::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('"');
  size_t i = 0;
  while (i < value.size()) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(value, i);
      if (len == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out.append(value.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::BeginObject() {
  BeforeValue();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_.push_back('}');
  if (!first_.empty()) first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  BeforeValue();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_.push_back(']');
  if (!first_.empty()) first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::Key(absl::string_view key) {
  BeforeValue();
  out_.append(JsonQuote(key));
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(absl::string_view value) {
  BeforeValue();
  out_.append(JsonQuote(value));
  return *this;
}

JsonWriter& JsonWriter::Double(double value) {
  if (std::isnan(value)) return String("NaN");
  if (std::isinf(value)) return String(value > 0 ? "Infinity" : "-Infinity");
  BeforeValue();
  out_.append(FormatDouble(value));
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  absl::StrAppend(&out_, value);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool value) {
  BeforeValue();
  out_.append(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::Null() {
  BeforeValue();
  out_.append("null");
  return *this;
}

JsonWriter& JsonWriter::Raw(absl::string_view json) {
  BeforeValue();
  out_.append(json.data(), json.size());
  return *this;
}

// ---------------------------------------------------------------------------------------------------------
// Input

bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", EscapeForTerminal(path), "' is a directory; give a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open '", path, "': ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading '", path, "'"));
  return contents.str();
}

absl::StatusOr<cv1::Matrix> ParseMatrix(absl::string_view text) {
  if (IsBlank(text))
    return absl::InvalidArgumentError("matrix is empty: give rows like \"1,2;3,4\"");
  cv1::Matrix matrix;
  const std::vector<absl::string_view> rows = absl::StrSplit(text, ';');
  for (size_t r = 0; r < rows.size(); ++r) {
    if (IsBlank(rows[r])) {
      return absl::InvalidArgumentError(
          absl::StrCat("row ", r + 1, " is empty (rows are separated by ';', columns by ',')"));
    }
    MAAS_RETURN_IF_ERROR(AppendRow(rows[r], absl::StrCat("row ", r + 1), &matrix));
  }
  return matrix;
}

absl::StatusOr<cv1::Matrix> ParseMatrixCsv(absl::string_view content) {
  cv1::Matrix matrix;
  const std::vector<absl::string_view> lines = SplitLines(content);
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    MAAS_RETURN_IF_ERROR(AppendRow(line, absl::StrCat("line ", i + 1), &matrix));
  }
  if (matrix.rows() == 0) {
    return absl::InvalidArgumentError("CSV has no data rows (only blank or '#' comment lines)");
  }
  return matrix;
}

namespace {

// 'label<TAB>text' lines, or 'label<TAB>weight<TAB>text' lines when `weighted`.
absl::StatusOr<std::vector<dv1::LabeledText>> ParseLabeledLines(absl::string_view content,
                                                                bool weighted) {
  const absl::string_view format = weighted ? "label<TAB>weight<TAB>text" : "label<TAB>text";
  std::vector<dv1::LabeledText> examples;
  const std::vector<absl::string_view> lines = SplitLines(content);
  for (size_t i = 0; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    if (IsBlank(line)) continue;
    const std::string where = absl::StrCat("line ", i + 1);
    const size_t tab = line.find('\t');
    const size_t text_tab =
        !weighted || tab == absl::string_view::npos ? tab : line.find('\t', tab + 1);
    if (text_tab == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          weighted ? absl::StrCat(where, ": expected '", format, "' (--weighted)")
                   : absl::StrCat(where, ": expected '", format, "' but found no tab"));
    }
    const absl::string_view label = absl::StripAsciiWhitespace(line.substr(0, tab));
    if (label.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": empty label before the tab"));
    }
    if (!IsValidUtf8(label)) {  // the text may be any bytes: the model's decode_error decides
      return absl::InvalidArgumentError(absl::StrCat(where, ": the label is not valid UTF-8"));
    }
    const absl::string_view text = line.substr(text_tab + 1);
    if (!weighted && examples.empty()) {  // the first data line: a header is not an example
      const std::string first = absl::AsciiStrToLower(label);
      const std::string second = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
      const bool label_like = first == "label" || first == "labels" || first == "class" ||
                              first == "category" || first == "target" || first == "y";
      const bool text_like = second == "text" || second == "texts" || second == "document" ||
                             second == "sentence" || second == "x" || second == "content";
      if (label_like && text_like) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, " looks like a header ('", EscapeForTerminal(label),
            "<TAB>...'), not an example: the file holds 'label<TAB>text' lines only; remove the "
            "header line"));
      }
    }
    dv1::LabeledText& example = examples.emplace_back();
    if (weighted) {
      MAAS_ASSIGN_OR_RETURN(const double weight,
                            ParseFiniteDouble(line.substr(tab + 1, text_tab - tab - 1),
                                              absl::StrCat(where, ": weight")));
      if (weight < 0) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": weight must be >= 0"));
      }
      example.set_weight(weight);
    }
    example.set_label(std::string(label));
    example.set_text(std::string(text));
  }
  if (examples.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the file has no examples (expected '", format, "' lines)"));
  }
  return examples;
}

}  // namespace

absl::StatusOr<std::vector<dv1::LabeledText>> ParseTrainingTsv(absl::string_view content) {
  return ParseLabeledLines(content, /*weighted=*/false);
}

absl::StatusOr<std::vector<std::string>> ParseTextLines(absl::string_view content) {
  std::vector<std::string> texts;
  const std::vector<absl::string_view> lines = SplitLines(content);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (IsBlank(lines[i])) continue;
    texts.emplace_back(lines[i]);
  }
  if (texts.empty()) return absl::InvalidArgumentError("text file has no (non-blank) lines");
  return texts;
}

absl::StatusOr<gv1::Estimator> ParseEstimator(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower.empty()) return gv1::ESTIMATOR_UNSPECIFIED;
  if (lower == "exact") return gv1::EXACT;
  if (lower == "prior") return gv1::PRIOR;
  if (lower == "importance") return gv1::IMPORTANCE;
  if (lower == "ais") return gv1::AIS;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown estimator '", name, "': use exact, prior, importance or ais"));
}

absl::StatusOr<cv1::ModelType> ParseModelType(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower.empty()) return cv1::MODEL_TYPE_UNSPECIFIED;
  if (lower == "generative") return cv1::GENERATIVE;
  if (lower == "discriminative") return cv1::DISCRIMINATIVE;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model type '", name, "': use generative or discriminative"));
}

// ---------------------------------------------------------------------------------------------------------
// Output

size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) {  // a stray byte: one column
      ++width;
      ++i;
      continue;
    }
    uint32_t code_point = static_cast<unsigned char>(text[i]);
    if (len > 1) {
      code_point &= 0xFF >> (len + 1);
      for (size_t k = 1; k < len; ++k) {
        code_point = (code_point << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
      }
    }
    const bool combining = (code_point >= 0x0300 && code_point <= 0x036F) ||
                           (code_point >= 0x200B && code_point <= 0x200F);
    const bool wide = (code_point >= 0x1100 && code_point <= 0x115F) ||
                      (code_point >= 0x2E80 && code_point <= 0xA4CF && code_point != 0x303F) ||
                      (code_point >= 0xAC00 && code_point <= 0xD7A3) ||
                      (code_point >= 0xF900 && code_point <= 0xFAFF) ||
                      (code_point >= 0xFE30 && code_point <= 0xFE4F) ||
                      (code_point >= 0xFF00 && code_point <= 0xFF60) ||
                      (code_point >= 0xFFE0 && code_point <= 0xFFE6) ||
                      (code_point >= 0x1F300 && code_point <= 0x1F64F) ||
                      (code_point >= 0x1F900 && code_point <= 0x1F9FF) ||
                      (code_point >= 0x20000 && code_point <= 0x3FFFD);
    width += combining ? 0 : wide ? 2 : 1;
    i += len;
  }
  return width;
}

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size(), 0);
  const auto measure = [&widths](const std::vector<std::string>& row) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  std::string out;
  const auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line.append(row[c]);
      if (c + 1 < row.size()) line.append(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  };
  if (!header.empty()) emit(header);
  for (const auto& row : rows) emit(row);
  return out;
}

std::string ModelTypeName(cv1::ModelType type) {
  switch (type) {
    case cv1::GENERATIVE:
      return "generative";
    case cv1::DISCRIMINATIVE:
      return "discriminative";
    default:
      return "unspecified";
  }
}

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(timestamp.seconds()),
                          absl::UTCTimeZone());
}

std::string FormatModels(const cv1::ListModelsResponse& response, bool json) {
  if (json) {
    JsonWriter w;
    w.BeginObject().Key("models").BeginArray();
    for (const cv1::ModelInfo& info : response.models()) {
      w.BeginObject()
          .Key("name")
          .String(info.name())
          .Key("version")
          .Int(info.version())
          .Key("type")
          .String(cv1::ModelType_Name(info.type()))
          .Key("family")
          .String(info.family())
          .Key("created_at");
      if (info.has_created_at()) {
        w.String(FormatTimestamp(info.created_at()));
      } else {
        w.Null();
      }
      w.Key("description")
          .String(info.description())
          .Key("dimension")
          .Int(info.dimension())
          .Key("size_bytes")
          .Int(info.size_bytes())
          .Key("labels")
          .BeginObject();
      std::vector<std::pair<std::string, std::string>> labels(info.labels().begin(),
                                                              info.labels().end());
      std::sort(labels.begin(), labels.end());
      for (const auto& [key, value] : labels) w.Key(key).String(value);
      w.EndObject().EndObject();
    }
    w.EndArray().Key("missing_backends").BeginArray();
    for (const std::string& backend : response.missing_backends()) w.String(backend);
    w.EndArray().Key("unreadable_versions").BeginArray();
    for (const cv1::UnreadableVersion& bad : response.unreadable_versions()) {
      w.BeginObject()
          .Key("name")
          .String(bad.name())
          .Key("version")
          .Int(bad.version())
          .Key("type")
          .String(cv1::ModelType_Name(bad.type()))
          .Key("code")
          .String(bad.code())
          .Key("message")
          .String(bad.message())
          .EndObject();
    }
    w.EndArray().Key("next_page_token").String(response.next_page_token()).EndObject();
    return w.str() + "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (const cv1::ModelInfo& info : response.models()) {
    rows.push_back({EscapeForTerminal(info.name()), absl::StrCat(info.version()),
                    ModelTypeName(info.type()),
                    info.family().empty() ? "-" : EscapeForTerminal(info.family()),
                    FormatTimestamp(info.created_at())});
  }
  return FormatTable({"NAME", "VERSION", "TYPE", "FAMILY", "CREATED"}, rows);
}

std::string FormatModelWarnings(const cv1::ListModelsResponse& response) {
  std::string out;
  for (const std::string& backend : response.missing_backends()) {
    absl::StrAppend(&out, "maas: warning: a backend did not answer, its models are not listed: ",
                    EscapeForTerminal(backend), "\n");
  }
  for (const cv1::UnreadableVersion& bad : response.unreadable_versions()) {
    absl::StrAppend(&out, "maas: warning: ", ModelTypeName(bad.type()), " model \"",
                    EscapeForTerminal(bad.name()), "\" version ", bad.version(),
                    " cannot be read (", EscapeForTerminal(bad.code()), ": ",
                    EscapeForTerminal(bad.message()),
                    "); restore its file or delete the version\n");
  }
  if (!response.next_page_token().empty()) {
    absl::StrAppend(&out, "maas: more models may follow: the next page is --page_token=",
                    EscapeForTerminal(response.next_page_token()), "\n");
  }
  return out;
}

std::string FormatSampleHeader(absl::string_view model, uint64_t num_samples,
                               const gv1::SampleBatch& first_batch) {
  return absl::StrCat("# model=", EscapeForTerminal(model),
                      " version=", first_batch.model_version(), " seed=", first_batch.seed(),
                      " start_index=", first_batch.start_index(), " num_samples=", num_samples,
                      " x_cols=", first_batch.x().cols(),
                      " latent_cols=", first_batch.latents().cols(), "\n");
}

absl::StatusOr<std::string> FormatSampleRows(const gv1::SampleBatch& batch) {
  MAAS_RETURN_IF_ERROR(CheckBatch(batch));
  const cv1::Matrix& x = batch.x();
  const cv1::Matrix& z = batch.latents();
  const bool has_latents = z.values_size() > 0;
  std::string out;
  for (uint32_t r = 0; r < x.rows(); ++r) {
    for (uint32_t c = 0; c < x.cols(); ++c) {
      if (c > 0) out.push_back(',');
      out.append(FormatDouble(x.values(r * x.cols() + c)));
    }
    if (has_latents) {
      for (uint32_t c = 0; c < z.cols(); ++c) {
        out.push_back(',');
        out.append(FormatDouble(z.values(r * z.cols() + c)));
      }
    }
    out.push_back('\n');
  }
  return out;
}

absl::StatusOr<std::string> FormatSamplesJson(absl::string_view model, uint64_t num_samples,
                                              const std::vector<gv1::SampleBatch>& batches) {
  for (const gv1::SampleBatch& batch : batches) MAAS_RETURN_IF_ERROR(CheckBatch(batch));
  JsonWriter w;
  w.BeginObject().Key("model").String(model);
  if (batches.empty()) {
    w.Key("model_version").Null().Key("seed").Null().Key("start_index").Null();
  } else {
    w.Key("model_version")
        .Int(batches[0].model_version())
        .Key("seed")
        .Uint(batches[0].seed())
        .Key("start_index")
        .Uint(batches[0].start_index());
  }
  w.Key("num_samples").Uint(num_samples).Key("x").BeginArray();
  for (const gv1::SampleBatch& batch : batches) WriteRows(batch.x(), &w);
  w.EndArray().Key("latents").BeginArray();
  for (const gv1::SampleBatch& batch : batches) WriteRows(batch.latents(), &w);
  w.EndArray().EndObject();
  return w.str() + "\n";
}

std::string FormatEstimate(absl::string_view model,
                           const gv1::EstimateLogLikelihoodResponse& response, bool json,
                           uint64_t row_offset, uint64_t sample_offset) {
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("model")
        .String(model)
        .Key("model_version")
        .Int(response.model_version())
        .Key("estimator")
        .String(gv1::Estimator_Name(response.estimator()))
        .Key("seed")
        .Uint(response.seed())
        .Key("row_offset")
        .Uint(row_offset)
        .Key("sample_offset")
        .Uint(sample_offset)
        .Key("rows")
        .BeginArray();
    for (int i = 0; i < response.rows_size(); ++i) {
      const gv1::RowEstimate& row = response.rows(i);
      w.BeginObject()
          .Key("row")
          .Uint(row_offset + static_cast<uint64_t>(i))
          .Key("log_likelihood")
          .Double(row.log_likelihood())
          .Key("standard_error")
          .Double(row.standard_error())
          .Key("ess")
          .Double(row.ess())
          .Key("num_samples")
          .Uint(row.num_samples())
          .Key("pareto_k")
          .Double(row.pareto_k())
          .Key("exact_log_likelihood");
      if (row.has_exact_log_likelihood()) {
        w.Double(row.exact_log_likelihood());
      } else {
        w.Null();
      }
      w.Key("ais_acceptance_rate")
          .Double(row.ais_acceptance_rate())
          .Key("statistics")
          .BeginObject()
          .Key("count")
          .Uint(row.statistics().count())
          .Key("log_sum_w")
          .Double(row.statistics().log_sum_w())
          .Key("log_sum_w2")
          .Double(row.statistics().log_sum_w2())
          .EndObject();
      w.EndObject();
    }
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < response.rows_size(); ++i) {
    const gv1::RowEstimate& row = response.rows(i);
    rows.push_back(
        {absl::StrCat(row_offset + static_cast<uint64_t>(i)), HumanDouble(row.log_likelihood()),
         HumanDouble(row.standard_error()), HumanDouble(row.ess()),
         row.has_exact_log_likelihood() ? HumanDouble(row.exact_log_likelihood()) : "-"});
  }
  return absl::StrCat(
      "# model=", EscapeForTerminal(model), " version=", response.model_version(),
      " estimator=", LowerEnumName(gv1::Estimator_Name(response.estimator())),
      " seed=", response.seed(), "\n",
      FormatTable({"ROW", "LOG_LIKELIHOOD", "STANDARD_ERROR", "ESS", "EXACT"}, rows));
}

std::string FormatFit(const gv1::FitModelResponse& response, bool json) {
  const cv1::ModelInfo& info = response.info();
  const gv1::FitTrace& trace = response.trace();
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("name")
        .String(info.name())
        .Key("version")
        .Int(info.version())
        .Key("family")
        .String(info.family())
        .Key("dimension")
        .Int(info.dimension())
        .Key("num_rows")
        .Uint(trace.num_rows())
        .Key("n_iter")
        .Uint(trace.n_iter())
        .Key("converged")
        .Bool(trace.converged())
        .Key("seed")
        .Uint(trace.seed())
        .Key("log_likelihood")
        .BeginArray();
    for (double v : trace.log_likelihood()) w.Double(v);
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  const std::string last =
      trace.log_likelihood().empty()
          ? "-"
          : absl::StrFormat("%.6g", trace.log_likelihood(trace.log_likelihood_size() - 1));
  return FormatTable({},
                     {{"name", EscapeForTerminal(info.name())},
                      {"version", absl::StrCat(info.version())},
                      {"family", info.family().empty() ? "-" : EscapeForTerminal(info.family())},
                      {"dimension", absl::StrCat(info.dimension())},
                      {"rows", absl::StrCat(trace.num_rows())},
                      {"iterations", absl::StrCat(trace.n_iter())},
                      {"converged", trace.converged() ? "yes" : "no"},
                      {"log_likelihood", last},
                      {"seed", absl::StrCat(trace.seed())}});
}

absl::StatusOr<gv1::FitConfig> BuildFitConfig(const CommandArgs& args) {
  gv1::FitConfig config;
  config.set_name(args.name);
  if (args.seed.has_value()) config.set_seed(*args.seed);
  const auto given = [&args](const char* flag) { return args.flags_set.count(flag) > 0; };
  std::set<std::string> allowed;
  const std::string family = absl::AsciiStrToLower(args.family);
  if (family == "uniform") {
    config.mutable_uniform();
  } else if (family == "gaussian_mixture") {
    allowed = {"n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init", "init"};
    gv1::GaussianMixtureFit* fit = config.mutable_gaussian_mixture();
    fit->set_n_components(args.n_components);
    const std::string type = absl::AsciiStrToLower(args.covariance_type);
    if (type == "full") {
      fit->set_covariance_type(gv1::FULL);
    } else if (type == "diag") {
      fit->set_covariance_type(gv1::DIAG);
    } else if (type == "spherical") {
      fit->set_covariance_type(gv1::SPHERICAL);
    } else if (given("covariance_type")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--covariance_type must be full, diag or spherical, not '", args.covariance_type, "'"));
    }
    if (given("tol")) fit->set_tol(args.tol);
    if (given("reg_covar")) fit->set_reg_covar(args.reg_covar);
    fit->set_max_iter(args.max_iter);
    fit->set_n_init(args.n_init);
    const std::string init = absl::AsciiStrToLower(args.init);
    if (init == "kmeans") {
      fit->set_init_params(gv1::INIT_KMEANS);
    } else if (init == "k-means++") {
      fit->set_init_params(gv1::INIT_K_MEANS_PLUS_PLUS);
    } else if (init == "random") {
      fit->set_init_params(gv1::INIT_RANDOM);
    } else if (init == "random_from_data") {
      fit->set_init_params(gv1::INIT_RANDOM_FROM_DATA);
    } else if (given("init")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--init must be kmeans, k-means++, random or random_from_data, not '", args.init, "'"));
    }
  } else if (family == "ppca") {
    allowed = {"latent_dim"};
    config.mutable_ppca()->set_latent_dim(args.latent_dim);
  } else if (family == "factor_analysis") {
    allowed = {"latent_dim", "tol", "max_iter"};
    gv1::FactorAnalysisFit* fit = config.mutable_factor_analysis();
    fit->set_latent_dim(args.latent_dim);
    if (given("tol")) fit->set_tol(args.tol);
    fit->set_max_iter(args.max_iter);
  } else if (family == "bernoulli_mixture") {
    allowed = {"n_components", "tol", "max_iter", "min_probability"};
    gv1::BernoulliMixtureFit* fit = config.mutable_bernoulli_mixture();
    fit->set_n_components(args.n_components);
    if (given("tol")) fit->set_tol(args.tol);
    fit->set_max_iter(args.max_iter);
    if (given("min_probability")) fit->set_min_probability(args.min_probability);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--family must be uniform, gaussian_mixture, ppca, factor_analysis or "
                     "bernoulli_mixture, not '",
                     args.family, "'"));
  }
  for (const char* flag : {"n_components", "covariance_type", "latent_dim", "tol", "max_iter",
                           "n_init", "reg_covar", "init", "min_probability"}) {
    if (given(flag) && allowed.count(flag) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " does not apply to --family=", family));
    }
  }
  if ((family == "ppca" || family == "factor_analysis") && !given("latent_dim")) {
    return absl::InvalidArgumentError(absl::StrCat("--family=", family, " needs --latent_dim"));
  }
  return config;
}

std::string FormatTrain(const dv1::TrainResponse& response, bool json) {
  const cv1::ModelInfo& info = response.info();
  const dv1::TrainSummary& summary = response.summary();
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("name")
        .String(info.name())
        .Key("version")
        .Int(info.version())
        .Key("family")
        .String(info.family())
        .Key("documents")
        .Uint(summary.num_documents())
        .Key("features")
        .Uint(summary.num_features())
        .Key("classes")
        .BeginArray();
    for (const std::string& label : summary.classes()) w.String(label);
    w.EndArray().Key("class_count").BeginArray();
    for (double count : summary.class_count()) w.Double(count);
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  std::vector<std::string> classes;
  for (const std::string& label : summary.classes()) classes.push_back(EscapeLabel(label));
  return FormatTable(
      {}, {{"name", EscapeForTerminal(info.name())},
           {"version", absl::StrCat(info.version())},
           {"family", info.family().empty() ? "-" : EscapeForTerminal(info.family())},
           {"documents", absl::StrCat(summary.num_documents())},
           {"classes", absl::StrCat(summary.classes_size(), ": ", absl::StrJoin(classes, ", "))},
           {"features", absl::StrCat(summary.num_features())}});
}

absl::StatusOr<std::string> FormatEvaluate(absl::string_view model,
                                           const dv1::EvaluateResponse& response, bool json) {
  const cv1::Matrix& confusion = response.confusion_matrix();
  MAAS_RETURN_IF_ERROR(CheckMatrix(confusion, "confusion"));
  const uint64_t num_classes = static_cast<uint64_t>(response.classes_size());
  if (confusion.rows() != num_classes || confusion.cols() != num_classes) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed confusion matrix from the server: ", confusion.rows(), " x ",
                     confusion.cols(), " for ", num_classes, " classes"));
  }
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("model")
        .String(model)
        .Key("model_version")
        .Int(response.model_version())
        .Key("num_documents")
        .Uint(response.num_documents())
        .Key("accuracy")
        .Double(response.accuracy())
        .Key("macro_f1")
        .Double(response.macro_f1())
        .Key("weighted_f1")
        .Double(response.weighted_f1())
        .Key("log_loss")
        .Double(response.log_loss())
        .Key("classes")
        .BeginArray();
    for (const dv1::ClassMetrics& c : response.classes()) {
      w.BeginObject()
          .Key("label")
          .String(c.label())
          .Key("precision")
          .Double(c.precision())
          .Key("recall")
          .Double(c.recall())
          .Key("f1")
          .Double(c.f1())
          .Key("support")
          .Double(c.support())
          .EndObject();
    }
    w.EndArray().Key("confusion_matrix").BeginArray();
    WriteRows(confusion, &w);
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  std::string out = FormatTable({}, {{"model", EscapeForTerminal(model)},
                                     {"version", absl::StrCat(response.model_version())},
                                     {"documents", absl::StrCat(response.num_documents())},
                                     {"accuracy", HumanDouble(response.accuracy())},
                                     {"macro F1", HumanDouble(response.macro_f1())},
                                     {"weighted F1", HumanDouble(response.weighted_f1())},
                                     {"log loss", HumanDouble(response.log_loss())}});
  std::vector<std::string> labels;
  std::vector<std::vector<std::string>> rows;
  for (const dv1::ClassMetrics& c : response.classes()) {
    labels.push_back(EscapeLabel(c.label()));
    rows.push_back({labels.back(), HumanDouble(c.precision()), HumanDouble(c.recall()),
                    HumanDouble(c.f1()), HumanDouble(c.support())});
  }
  absl::StrAppend(&out, "\n", FormatTable({"CLASS", "PRECISION", "RECALL", "F1", "SUPPORT"}, rows));
  std::vector<std::string> header = {"TRUE\\PREDICTED"};
  header.insert(header.end(), labels.begin(), labels.end());
  rows.clear();
  for (uint32_t r = 0; r < confusion.rows(); ++r) {
    std::vector<std::string>& row = rows.emplace_back();
    row.push_back(labels[r]);
    for (uint32_t c = 0; c < confusion.cols(); ++c) {
      row.push_back(HumanDouble(confusion.values(r * confusion.cols() + c)));
    }
  }
  absl::StrAppend(&out, "\nconfusion matrix (rows: true class, columns: predicted class)\n",
                  FormatTable(header, rows));
  return out;
}

std::string FormatClassify(const std::vector<std::string>& texts,
                           const dv1::ClassifyResponse& response, bool json) {
  if (json) {
    JsonWriter w;
    w.BeginObject().Key("model_version").Int(response.model_version()).Key("results").BeginArray();
    for (int i = 0; i < response.results_size(); ++i) {
      const dv1::Classification& result = response.results(i);
      w.BeginObject()
          .Key("text")
          .String(static_cast<size_t>(i) < texts.size() ? texts[i] : "")
          .Key("label")
          .String(result.label())
          .Key("scores")
          .BeginArray();
      for (const dv1::ClassScore& score : result.scores()) {
        w.BeginObject()
            .Key("label")
            .String(score.label())
            .Key("probability")
            .Double(score.probability())
            .Key("log_probability")
            .Double(score.log_probability())
            .EndObject();
      }
      w.EndArray().EndObject();
    }
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < response.results_size(); ++i) {
    const dv1::Classification& result = response.results(i);
    std::vector<std::string> scores;
    for (const dv1::ClassScore& score : result.scores()) {
      scores.push_back(
          absl::StrCat(EscapeLabel(score.label()), "=", HumanDouble(score.probability())));
    }
    rows.push_back({absl::StrCat(i), EscapeLabel(result.label()), absl::StrJoin(scores, " ")});
  }
  return FormatTable({"INDEX", "LABEL", "PROBABILITIES"}, rows);
}

std::string FormatDelete(absl::string_view name, cv1::ModelType type,
                         const cv1::DeleteModelResponse& response, bool json) {
  if (json) {
    JsonWriter w;
    w.BeginObject()
        .Key("name")
        .String(name)
        .Key("type")
        .String(cv1::ModelType_Name(type))
        .Key("deleted_versions")
        .BeginArray();
    for (int64_t version : response.deleted_versions()) w.Int(version);
    w.EndArray().EndObject();
    return w.str() + "\n";
  }
  return absl::StrCat("deleted ", EscapeForTerminal(name), " (", ModelTypeName(type),
                      ") versions: ", absl::StrJoin(response.deleted_versions(), ", "), "\n");
}

absl::StatusOr<std::string> FormatMessage(const google::protobuf::Message& message, bool json) {
  std::string out;
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat("cannot convert ", message.GetTypeName(), " to JSON: ", status.ToString()));
    }
    return out + "\n";
  }
  if (!google::protobuf::TextFormat::PrintToString(message, &out)) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName()));
  }
  return absl::StrCat("# ", message.GetTypeName(), "\n", out);
}

// ---------------------------------------------------------------------------------------------------------
// Command line

namespace {

// The train flags that configure the vectorizer (count / hashing / tfidf) and the classifier.
const std::set<std::string>& VectorizerFlags() {
  static const auto* const kFlags = new std::set<std::string>{
      "vectorizer",     "tfidf",         "analyzer",        "ngram_range",
      "lowercase",      "strip_accents", "stop_words",      "stop_words_file",
      "token_pattern",  "binary",        "decode_error",    "min_df",
      "max_df",         "max_features",  "vocabulary_file", "n_features",
      "alternate_sign", "norm",          "hashing_norm",    "use_idf",
      "smooth_idf",     "sublinear_tf"};
  return *kFlags;
}
const std::set<std::string>& ClassifierFlags() {
  static const auto* const kFlags =
      new std::set<std::string>{"classifier",  "alpha",    "force_alpha",    "fit_prior",
                                "class_prior", "binarize", "complement_norm"};
  return *kFlags;
}

absl::StatusOr<dv1::Norm> ParseNorm(absl::string_view value, absl::string_view flag) {
  const std::string norm = absl::AsciiStrToLower(value);
  if (norm == "l1") return dv1::NORM_L1;
  if (norm == "l2") return dv1::NORM_L2;
  if (norm == "none") return dv1::NORM_NONE;
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " must be l1, l2 or none; got '", value, "'"));
}

// scikit-learn's int-or-float min_df / max_df: "2" is a document count, "0.5" or "1e-3" a fraction.
absl::StatusOr<dv1::DocumentFrequency> ParseDocumentFrequency(absl::string_view value,
                                                              absl::string_view flag) {
  dv1::DocumentFrequency df;
  const std::string where = absl::StrCat("--", flag);
  if (value.find_first_of(".eE") == absl::string_view::npos) {
    uint64_t count = 0;
    if (!absl::SimpleAtoi(value, &count)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where,
          " must be a document count (an integer >= 0) or a fraction in [0, 1] written "
          "with a '.'; got '",
          value, "'"));
    }
    df.set_count(count);
    return df;
  }
  MAAS_ASSIGN_OR_RETURN(const double fraction, ParseFiniteDouble(value, where));
  df.set_fraction(fraction);  // the service checks the range (scikit-learn's message)
  return df;
}

std::vector<std::string> SplitList(absl::string_view value) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    out.emplace_back(absl::StripAsciiWhitespace(part));
  }
  return out;
}

// One term per line (blank lines skipped).
absl::StatusOr<std::vector<std::string>> ReadWordList(const std::string& path) {
  MAAS_ASSIGN_OR_RETURN(const std::string content, ReadFile(path));
  std::vector<std::string> words;
  const std::vector<absl::string_view> lines = SplitLines(content);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (IsBlank(lines[i])) continue;
    if (!IsValidUtf8(lines[i])) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": line ", i + 1, ": invalid UTF-8"));
    }
    words.emplace_back(absl::StripAsciiWhitespace(lines[i]));
  }
  if (words.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no terms"));
  return words;
}

}  // namespace

absl::StatusOr<dv1::TrainConfig> BuildTrainConfig(const CommandArgs& args) {
  const CommandArgs::Train& t = args.train;
  const auto given = [&args](const char* flag) { return args.flags_set.count(flag) > 0; };
  const auto not_for = [&](const std::set<std::string>& flags,
                           absl::string_view what) -> absl::Status {
    for (const std::string& flag : flags) {
      if (args.flags_set.count(flag) > 0) {
        return absl::InvalidArgumentError(absl::StrCat("--", flag, " does not apply to ", what));
      }
    }
    return absl::OkStatus();
  };
  dv1::TrainConfig config;
  config.set_name(args.name);
  config.set_partial(args.partial);
  if (given("integer_labels")) {
    config.set_label_type(t.integer_labels ? dv1::LABEL_TYPE_INT64 : dv1::LABEL_TYPE_STRING);
  }
  if (given("classes")) {
    for (std::string& label : SplitList(t.classes)) {
      if (label.empty()) {
        return absl::InvalidArgumentError("--classes has an empty label (comma-separated list)");
      }
      config.add_classes(std::move(label));
    }
  }

  const bool any_vectorizer = std::any_of(VectorizerFlags().begin(), VectorizerFlags().end(),
                                          [&](const std::string& f) { return given(f.c_str()); });
  if (any_vectorizer) {
    dv1::VectorizerConfig* vectorizer = config.mutable_vectorizer();
    const std::string kind = given("vectorizer") ? absl::AsciiStrToLower(t.vectorizer) : "count";
    dv1::TextOptions* text = nullptr;
    if (kind == "count") {
      MAAS_RETURN_IF_ERROR(not_for({"n_features", "alternate_sign", "hashing_norm"},
                                   "the count vectorizer (use --vectorizer hashing)"));
      dv1::CountVectorizerConfig* count = vectorizer->mutable_count();
      text = count->mutable_text();
      if (given("min_df")) {
        MAAS_ASSIGN_OR_RETURN(*count->mutable_min_df(), ParseDocumentFrequency(t.min_df, "min_df"));
      }
      if (given("max_df")) {
        MAAS_ASSIGN_OR_RETURN(*count->mutable_max_df(), ParseDocumentFrequency(t.max_df, "max_df"));
      }
      if (given("max_features")) {
        if (t.max_features == 0) {
          return absl::InvalidArgumentError(
              "--max_features must be >= 1 (leave it out for no limit)");
        }
        count->set_max_features(t.max_features);
      }
    } else if (kind == "hashing") {
      MAAS_RETURN_IF_ERROR(not_for({"min_df", "max_df", "max_features", "vocabulary_file"},
                                   "the hashing vectorizer (it learns no vocabulary)"));
      dv1::HashingVectorizerConfig* hashing = vectorizer->mutable_hashing();
      text = hashing->mutable_text();
      if (given("n_features")) {
        if (t.n_features == 0) return absl::InvalidArgumentError("--n_features must be >= 1");
        hashing->set_n_features(t.n_features);
      }
      if (given("alternate_sign")) hashing->set_alternate_sign(t.alternate_sign);
      if (given("hashing_norm")) {
        if (!t.tfidf) {
          return absl::InvalidArgumentError(
              "--hashing_norm is the hashing vectorizer's norm under --tfidf; without --tfidf use "
              "--norm");
        }
        MAAS_ASSIGN_OR_RETURN(const dv1::Norm norm, ParseNorm(t.hashing_norm, "hashing_norm"));
        hashing->set_norm(norm);
      }
      if (given("norm") && !t.tfidf) {
        MAAS_ASSIGN_OR_RETURN(const dv1::Norm norm, ParseNorm(t.norm, "norm"));
        hashing->set_norm(norm);
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--vectorizer must be count or hashing; got '", t.vectorizer, "'"));
    }
    if (t.tfidf) {
      dv1::TfidfConfig* tfidf = vectorizer->mutable_tfidf();
      if (given("norm")) {
        MAAS_ASSIGN_OR_RETURN(const dv1::Norm norm, ParseNorm(t.norm, "norm"));
        tfidf->set_norm(norm);
      }
      if (given("use_idf")) tfidf->set_use_idf(t.use_idf);
      if (given("smooth_idf")) tfidf->set_smooth_idf(t.smooth_idf);
      if (given("sublinear_tf")) tfidf->set_sublinear_tf(t.sublinear_tf);
    } else {
      MAAS_RETURN_IF_ERROR(
          not_for({"use_idf", "smooth_idf", "sublinear_tf"}, "raw counts (add --tfidf)"));
      if (kind == "count" && given("norm")) {
        return absl::InvalidArgumentError(
            "--norm does not apply to raw counts (add --tfidf, or use --vectorizer hashing)");
      }
    }
    if (given("analyzer")) {
      const std::string analyzer = absl::AsciiStrToLower(t.analyzer);
      if (analyzer == "word") {
        text->set_analyzer(dv1::ANALYZER_WORD);
      } else if (analyzer == "char") {
        text->set_analyzer(dv1::ANALYZER_CHAR);
      } else if (analyzer == "char_wb") {
        text->set_analyzer(dv1::ANALYZER_CHAR_WB);
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--analyzer must be word, char or char_wb; got '", t.analyzer, "'"));
      }
    }
    if (given("ngram_range")) {
      const std::vector<std::string> parts = SplitList(t.ngram_range);
      uint32_t low = 0, high = 0;
      if (parts.size() > 2 || !absl::SimpleAtoi(parts[0], &low) ||
          !absl::SimpleAtoi(parts.back(), &high) || low == 0 || high < low) {
        return absl::InvalidArgumentError(
            absl::StrCat("--ngram_range must be MIN,MAX with 1 <= MIN <= MAX (or one N); got '",
                         t.ngram_range, "'"));
      }
      text->set_ngram_min(low);
      text->set_ngram_max(high);
    }
    if (given("lowercase")) text->set_lowercase(t.lowercase);
    if (given("strip_accents")) {
      const std::string strip = absl::AsciiStrToLower(t.strip_accents);
      if (strip == "ascii") {
        text->set_strip_accents(dv1::STRIP_ACCENTS_ASCII);
      } else if (strip == "unicode") {
        text->set_strip_accents(dv1::STRIP_ACCENTS_UNICODE);
      } else if (strip != "none") {
        return absl::InvalidArgumentError(absl::StrCat(
            "--strip_accents must be ascii, unicode or none; got '", t.strip_accents, "'"));
      }
    }
    if (given("stop_words")) {
      if (given("stop_words_file")) {
        return absl::InvalidArgumentError(
            "give --stop_words (the built-in list) or --stop_words_file, not both");
      }
      text->set_stop_words(t.stop_words);  // the service names the lists it knows
    }
    if (given("token_pattern")) text->set_token_pattern(t.token_pattern);
    if (given("binary")) text->set_binary(t.binary);
    if (given("decode_error")) {
      const std::string mode = absl::AsciiStrToLower(t.decode_error);
      if (mode == "strict") {
        text->set_decode_error(dv1::DECODE_ERROR_STRICT);
      } else if (mode == "replace") {
        text->set_decode_error(dv1::DECODE_ERROR_REPLACE);
      } else if (mode == "ignore") {
        text->set_decode_error(dv1::DECODE_ERROR_IGNORE);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--decode_error must be strict, replace or ignore; got '", t.decode_error, "'"));
      }
    }
  }

  const bool any_classifier = std::any_of(ClassifierFlags().begin(), ClassifierFlags().end(),
                                          [&](const std::string& f) { return given(f.c_str()); });
  if (any_classifier) {
    const std::string kind =
        given("classifier") ? absl::AsciiStrToLower(t.classifier) : "multinomial_nb";
    std::vector<double> prior;
    if (given("class_prior")) {
      for (const std::string& part : SplitList(t.class_prior)) {
        MAAS_ASSIGN_OR_RETURN(const double p, ParseFiniteDouble(part, "--class_prior"));
        prior.push_back(p);
      }
    }
    const auto common = [&](auto* nb) {
      if (given("alpha")) nb->set_alpha(t.alpha);
      if (given("force_alpha")) nb->set_force_alpha(t.force_alpha);
      if (given("fit_prior")) nb->set_fit_prior(t.fit_prior);
      nb->mutable_class_prior()->Assign(prior.begin(), prior.end());
    };
    dv1::ClassifierConfig* classifier = config.mutable_classifier();
    if (kind == "multinomial_nb") {
      MAAS_RETURN_IF_ERROR(not_for({"binarize", "complement_norm"}, "multinomial_nb"));
      common(classifier->mutable_multinomial_nb());
    } else if (kind == "complement_nb") {
      MAAS_RETURN_IF_ERROR(not_for({"binarize"}, "complement_nb"));
      dv1::ComplementNbConfig* nb = classifier->mutable_complement_nb();
      common(nb);
      if (given("complement_norm")) nb->set_norm(t.complement_norm);
    } else if (kind == "bernoulli_nb") {
      MAAS_RETURN_IF_ERROR(not_for({"complement_norm"}, "bernoulli_nb"));
      dv1::BernoulliNbConfig* nb = classifier->mutable_bernoulli_nb();
      common(nb);
      if (given("binarize")) {
        if (absl::AsciiStrToLower(t.binarize) == "none") {
          nb->set_disable_binarize(true);
        } else {
          MAAS_ASSIGN_OR_RETURN(const double threshold,
                                ParseFiniteDouble(t.binarize, "--binarize"));
          nb->set_binarize(threshold);
        }
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--classifier must be multinomial_nb, complement_nb or bernoulli_nb; got '",
                       t.classifier, "'"));
    }
  }
  return config;
}

absl::Status AddTrainWordLists(const CommandArgs& args, dv1::TrainConfig* config) {
  const auto given = [&args](const char* flag) { return args.flags_set.count(flag) > 0; };
  if (given("vocabulary_file")) {
    MAAS_ASSIGN_OR_RETURN(const std::vector<std::string> words,
                          ReadWordList(args.train.vocabulary_file));
    config->mutable_vectorizer()->mutable_count()->mutable_vocabulary()->Assign(words.begin(),
                                                                                words.end());
  }
  if (given("stop_words_file")) {
    MAAS_ASSIGN_OR_RETURN(const std::vector<std::string> words,
                          ReadWordList(args.train.stop_words_file));
    dv1::VectorizerConfig* vectorizer = config->mutable_vectorizer();
    dv1::TextOptions* text = vectorizer->has_hashing()
                                 ? vectorizer->mutable_hashing()->mutable_text()
                                 : vectorizer->mutable_count()->mutable_text();
    text->mutable_stop_word_list()->Assign(words.begin(), words.end());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<dv1::LabeledText>> ParseWeightedTrainingTsv(absl::string_view content) {
  return ParseLabeledLines(content, /*weighted=*/true);
}

namespace {

struct CommandSpec {
  // Flags the command accepts besides the global ones.
  std::set<std::string> flags;
  // Flags it requires.
  std::vector<std::string> required;
};

const std::map<std::string, CommandSpec>& Commands() {
  static const auto* const kCommands = new std::map<std::string, CommandSpec>{
      {"models", {{"all_versions", "page_size", "page_token", "allow_partial"}, {}}},
      {"sample",
       {{"model", "model_version", "num_samples", "seed", "start_index", "batch_size", "latents"},
        {"model", "num_samples"}}},
      {"estimate",
       {{"model", "model_version", "x", "x_file", "estimator", "num_samples", "seed", "row_offset",
         "sample_offset"},
        {"model"}}},
      {"fit",
       {{"name", "data", "family", "seed", "n_components", "covariance_type", "latent_dim", "tol",
         "max_iter", "n_init", "reg_covar", "init", "min_probability"},
        {"name", "data", "family"}}},
      {"train",
       {{"name",
         "data",
         "partial",
         "classes",
         "integer_labels",
         "weighted",
         "vectorizer",
         "tfidf",
         "analyzer",
         "ngram_range",
         "lowercase",
         "strip_accents",
         "stop_words",
         "stop_words_file",
         "token_pattern",
         "binary",
         "decode_error",
         "min_df",
         "max_df",
         "max_features",
         "vocabulary_file",
         "n_features",
         "alternate_sign",
         "norm",
         "hashing_norm",
         "use_idf",
         "smooth_idf",
         "sublinear_tf",
         "classifier",
         "alpha",
         "force_alpha",
         "fit_prior",
         "class_prior",
         "binarize",
         "complement_norm"},
        {"name", "data"}}},
      {"evaluate", {{"model", "model_version", "data", "weighted"}, {"model", "data"}}},
      {"classify", {{"model", "model_version", "top_k", "text_file"}, {"model"}}},
      {"get", {{"model", "model_version", "type"}, {"model"}}},
      {"delete", {{"model", "model_version", "type"}, {"model"}}},
  };
  return *kCommands;
}

}  // namespace

const std::set<std::string>& GlobalFlags() {
  static const auto* const kGlobal =
      new std::set<std::string>{"target",          "timeout",           "json",
                                "auth_token_file", "tls_ca_file",       "tls_cert_file",
                                "tls_key_file",    "max_message_bytes", "reconnect_backoff_max_ms",
                                "version"};
  return *kGlobal;
}

bool IsCommand(absl::string_view command) { return Commands().count(std::string(command)) > 0; }

absl::Status ValidateCommandArgs(const CommandArgs& args) {
  if (args.command.empty()) return absl::InvalidArgumentError("no command given");
  const auto it = Commands().find(args.command);
  if (it == Commands().end()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", args.command, "'"));
  }
  const CommandSpec& spec = it->second;
  for (const std::string& flag : args.flags_set) {
    if (GlobalFlags().count(flag) == 0 && spec.flags.count(flag) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", flag, " does not apply to '", args.command, "'"));
    }
  }
  for (const std::string& flag : spec.required) {
    if (args.flags_set.count(flag) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("'", args.command, "' needs --", flag));
    }
  }
  const auto non_empty = [&args](const std::string& flag, const std::string& value) {
    if (args.flags_set.count(flag) > 0 && value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " must not be empty"));
    }
    return absl::OkStatus();
  };
  MAAS_RETURN_IF_ERROR(non_empty("model", args.model));
  MAAS_RETURN_IF_ERROR(non_empty("name", args.name));
  MAAS_RETURN_IF_ERROR(non_empty("data", args.data));
  MAAS_RETURN_IF_ERROR(non_empty("x_file", args.x_file));
  MAAS_RETURN_IF_ERROR(non_empty("text_file", args.text_file));
  if (args.version < 0) {
    return absl::InvalidArgumentError("--model_version must be >= 1 (or 0 for the latest)");
  }
  if (args.flags_set.count("page_size") > 0 && args.page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--page_size must be >= 1 (servers give at most 1000), got ", args.page_size));
  }
  if (args.flags_set.count("page_token") > 0 && args.flags_set.count("page_size") == 0) {
    return absl::InvalidArgumentError(
        "--page_token needs --page_size (the size of the page it asks for)");
  }
  if (args.command == "sample" && args.num_samples == 0) {
    return absl::InvalidArgumentError("--num_samples must be >= 1");
  }
  MAAS_RETURN_IF_ERROR(ParseEstimator(args.estimator).status());
  MAAS_RETURN_IF_ERROR(ParseModelType(args.type).status());
  if (args.command == "fit") MAAS_RETURN_IF_ERROR(BuildFitConfig(args).status());
  if (args.command == "train") MAAS_RETURN_IF_ERROR(BuildTrainConfig(args).status());
  if (args.command == "estimate") {
    const bool has_x = args.flags_set.count("x") > 0;
    const bool has_file = args.flags_set.count("x_file") > 0;
    if (has_x == has_file) {
      return absl::InvalidArgumentError("'estimate' needs exactly one of --x and --x_file");
    }
  }
  if (args.command == "classify") {
    const bool has_file = args.flags_set.count("text_file") > 0;
    if (has_file == !args.positional.empty()) {
      return absl::InvalidArgumentError(
          "'classify' needs the texts as arguments or --text_file, not both");
    }
  } else if (!args.positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", args.command, "' takes no arguments (got '", args.positional[0], "')"));
  }
  return absl::OkStatus();
}

std::string EscapeForTerminal(absl::string_view text, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {  // keep valid UTF-8 sequences, escape stray bytes
      size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
      // U+0080..U+009F (C1 controls, \xc2\x80..\xc2\x9f) are escaped: U+009B is a CSI.
      const bool c1_control = n == 2 && i + 1 < text.size() && c == 0xc2 &&
                              static_cast<unsigned char>(text[i + 1]) < 0xa0;
      if (n > 0 && !c1_control && i + n <= text.size() && IsValidUtf8(text.substr(i, n))) {
        out.append(text.data() + i, n);
        i += n - 1;
        continue;
      }
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else if (c < 0x20 || c == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (i < text.size()) absl::StrAppend(&out, "... (", text.size() - i, " more bytes)");
  return out;
}

std::string CommandUsage(absl::string_view command) {
  const std::string usage = UsageText();
  const std::string start = absl::StrCat("\n  ", command, " ");
  const size_t begin = usage.find(start);
  if (begin == std::string::npos) return usage;
  size_t end = begin + 1;
  // The command's block ends where the next command (two-space indent, a letter) or section starts.
  for (;;) {
    end = usage.find('\n', end);
    if (end == std::string::npos || end + 3 >= usage.size()) break;
    const bool next_command = usage.compare(end + 1, 2, "  ") == 0 && usage[end + 3] != ' ';
    if (next_command || usage[end + 1] == '\n') break;
    ++end;
  }
  return absl::StrCat("usage: maas [global flags] ", command, " [flags] [args]\n\n",
                      usage.substr(begin + 1, end - begin), "\n",
                      "Global flags (--target, --timeout, --json, TLS, token): maas --help\n");
}

std::string UsageText() {
  return R"(usage: maas [global flags] COMMAND [flags] [args]

commands:
  models   [--all_versions] [--page_size N [--page_token T]] [--allow_partial]
      List models of both types (a gateway's ListModels, or a service's own): NAME VERSION
      TYPE FAMILY CREATED. Every model, asked for page by page; with --page_size one page of at
      most N (servers give at most 1000), and when more may follow the next page's --page_token
      on stderr (in --json: next_page_token, empty at the end). When a backend did not answer
      the gateway, the listing (or page) is printed without its models, a warning on stderr
      (in --json: missing_backends), and maas exits 3; --allow_partial exits 0 then. Versions
      that cannot be read are listed (a warning, exit 0).
  sample   --model NAME [--model_version V] --num_samples N [--seed S] [--start_index I]
           [--batch_size B] [--latents]
      Stream samples: a '# model=... seed=...' comment line, then one CSV row per sample
      (x columns, then latent columns with --latents).
  estimate --model NAME (--x "1,2;3,4" | --x_file F.csv) [--estimator exact|prior|importance|ais]
           [--num_samples N] [--seed S] [--row_offset R] [--sample_offset J]
      log p(x) per row: ROW LOG_LIKELIHOOD STANDARD_ERROR ESS EXACT. --row_offset / --sample_offset
      shard a big estimate: the weights of global row R+i, sample J+j do not depend on the shard,
      and the JSON statistics of the shards merge exactly into one call's.
      CSV files: one row per line, blank and '#' lines skipped.
  fit      --name NAME --family F --data FILE.csv [--seed S] [hyperparameters]
      Fit a generative model to the CSV rows (same format as --x_file): F is uniform,
      gaussian_mixture [--n_components K --covariance_type full|diag|spherical --tol T
      --reg_covar R --max_iter N --n_init N --init kmeans|k-means++|random|random_from_data],
      ppca --latent_dim L, factor_analysis --latent_dim L [--tol T --max_iter N] or
      bernoulli_mixture [--n_components K --tol T --max_iter N --min_probability P].
  train    --name NAME --data FILE.tsv [--weighted] [--partial [--classes A,B,...]]
           [--integer_labels] [options]
      Train a text classifier from 'label<TAB>text' lines (blank lines skipped; labels UTF-8,
      texts as they are: --decode_error says what a text that is not UTF-8 becomes); with
      --weighted 'label<TAB>weight<TAB>text' (scikit-learn's sample_weight). Options keep
      scikit-learn's names and defaults (options not given: the service's defaults, or with
      --partial the continued version's):
      vectorizer: --vectorizer count|hashing  --analyzer word|char|char_wb  --ngram_range MIN,MAX
        --lowercase  --strip_accents ascii|unicode|none  --stop_words english
        --stop_words_file F  --token_pattern RE  --binary  --decode_error strict|replace|ignore
        count: --min_df N|F  --max_df N|F (an integer: documents; with '.': a fraction)
        --max_features N  --vocabulary_file F (one term per line: a fixed vocabulary)
        hashing: --n_features N  --alternate_sign  --norm l1|l2|none
        --tfidf [--norm l1|l2|none --use_idf --smooth_idf --sublinear_tf] (with hashing,
        --hashing_norm sets the hashing vectorizer's own norm)
      classifier: --classifier multinomial_nb|complement_nb|bernoulli_nb  --alpha A
        --force_alpha  --fit_prior  --class_prior P1,P2,...  --binarize T|none (bernoulli_nb)
        --complement_norm (complement_nb's norm)
      --partial continues the latest version as partial_fit (hashing, or a fixed vocabulary);
      its first call needs --classes, every label the model will ever see.
      --integer_labels: the labels are integers ('9', '-3'; int64, no leading zeros or '+'),
      ordered numerically as scikit-learn orders integer y (9 before 10); without it labels
      are strings, ordered by code point ('10' before '9'). GetModel shows it as label_type.
  evaluate --model NAME [--model_version V] --data FILE.tsv [--weighted]
      Evaluate a text classifier on labelled texts (the format of train's --data, streamed in
      batches): documents, accuracy, macro / weighted F1 and log loss, then PRECISION RECALL F1
      SUPPORT per class and the confusion matrix (rows: true class, columns: predicted class).
      With --weighted the metrics use the lines' weights (scikit-learn's sample_weight).
  classify --model NAME [--model_version V] [--top_k K] (TEXT... | --text_file F)
      Classify texts (one per line in F): INDEX LABEL PROBABILITIES. Texts are sent as they
      are: the model's decode_error handles bytes that are not UTF-8. They go in requests of
      at most 1000 texts and 4 MiB less 64 KiB of text, all answered by the version that
      answered the first.
  get      --model NAME [--model_version V] [--type generative|discriminative]
      The full model (protobuf text format; JSON with --json).
  delete   --model NAME [--model_version V] [--type generative|discriminative]
      Delete one version (or all versions when --model_version is not given).

global flags:
  --version               print the CLI's version and exit
  --target=HOST:PORT      server or gateway (default 127.0.0.1:50051, the local gateway)
  --timeout=SECONDS       deadline of each call (default 30; 0 = none)
  --json                  print one JSON document on stdout instead of text
  --auth_token_file=F     send 'authorization: Bearer <token>' with the token in F
  --tls_ca_file=F         talk TLS, verifying the server against the PEM CA in F
  --tls_cert_file=F --tls_key_file=K   present this client certificate (mutual TLS)
  --max_message_bytes=N   largest message received (default 64 MiB; models pages no larger)
  --reconnect_backoff_max_ms=MS   longest wait between connection attempts to a server that is
                          down (default 5000; > 0)

Flags are written --flag=value or --flag value; booleans as --flag or --noflag.
'maas COMMAND --help' shows one command. Exit codes: 0 ok; 1 error ("maas: <CODE>: <message>" on
stderr; with --json one line {"error":{"code":...,"message":...}} on stderr); 2 usage error (one
line, a JSON one with --json); 3 listing incomplete: a backend did not answer (models, unless
--allow_partial; the listing is printed all the same).
)";
}

}  // namespace maas::client::cli

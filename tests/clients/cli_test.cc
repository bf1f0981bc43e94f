// Transport-free CLI logic: matrix / CSV / TSV parsing, JSON writing (checked with protobuf's
// independent JSON parser), number formatting (checked by round-tripping through strtod) and table
// formats.
#include "clients/cpp/cli.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace maas::client::cli {
namespace {

namespace cv1 = ::maas::common::v1;
namespace gv1 = ::maas::generative::v1;

std::vector<double> Values(const cv1::Matrix& m) { return {m.values().begin(), m.values().end()}; }

// Parses JSON with protobuf's parser (independent of the writer under test).
google::protobuf::Value ParseJson(const std::string& json) {
  google::protobuf::Value value;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &value);
  INFO(json);
  REQUIRE(status.ok());
  return value;
}

std::string ErrorOf(const absl::Status& status) {
  REQUIRE_FALSE(status.ok());
  CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  return std::string(status.message());
}

TEST_CASE("ParseMatrix reads rows and columns") {
  const auto m = ParseMatrix("1,2;3,4");
  REQUIRE(m.ok());
  CHECK(m->rows() == 2);
  CHECK(m->cols() == 2);
  CHECK(Values(*m) == std::vector<double>{1, 2, 3, 4});

  const auto spaced = ParseMatrix(" -1.5 , +2e-3 ; 0 , 1E2 ");
  REQUIRE(spaced.ok());
  CHECK(Values(*spaced) == std::vector<double>{-1.5, 2e-3, 0, 100});

  const auto single = ParseMatrix("5");
  REQUIRE(single.ok());
  CHECK(single->rows() == 1);
  CHECK(single->cols() == 1);
}

TEST_CASE("ParseMatrix rejects bad matrices with the row and column") {
  using Catch::Contains;
  CHECK_THAT(ErrorOf(ParseMatrix("").status()), Contains("empty"));
  CHECK_THAT(ErrorOf(ParseMatrix("1,2;3").status()), Contains("row 2 has 1 columns"));
  CHECK_THAT(ErrorOf(ParseMatrix("1,2;3").status()), Contains("ragged"));
  CHECK_THAT(ErrorOf(ParseMatrix("1,a").status()),
             Contains("row 1, column 2: 'a' is not a number"));
  CHECK_THAT(ErrorOf(ParseMatrix("1,2;3,4x").status()), Contains("row 2, column 2"));
  CHECK_THAT(ErrorOf(ParseMatrix("1,,2").status()), Contains("column 2: empty value"));
  CHECK_THAT(ErrorOf(ParseMatrix("1;;2").status()), Contains("row 2 is empty"));
  CHECK_THAT(ErrorOf(ParseMatrix("1 2").status()), Contains("not a number"));
  CHECK_THAT(ErrorOf(ParseMatrix("0x10").status()), Contains("not a number"));
  CHECK_THAT(ErrorOf(ParseMatrix("+-1").status()), Contains("not a number"));
  CHECK_THAT(ErrorOf(ParseMatrix("1e999").status()), Contains("out of the range"));
  for (const char* non_finite : {"nan", "NaN", "inf", "-inf", "Infinity", "-INFINITY", "+nan"}) {
    INFO(non_finite);
    CHECK_THAT(ErrorOf(ParseMatrix(std::string("1;") + non_finite).status()),
               Contains("not a finite number"));
  }
}

TEST_CASE("ParseMatrixCsv skips blank and comment lines and names bad lines") {
  const auto m = ParseMatrixCsv("# header\r\n1,2\r\n\r\n  \n3.5,4\n# trailing\n");
  REQUIRE(m.ok());
  CHECK(m->rows() == 2);
  CHECK(m->cols() == 2);
  CHECK(Values(*m) == std::vector<double>{1, 2, 3.5, 4});
  using Catch::Contains;
  CHECK_THAT(ErrorOf(ParseMatrixCsv("1,2\n\n3\n").status()), Contains("line 3 has 1 columns"));
  CHECK_THAT(ErrorOf(ParseMatrixCsv("x,y\n1,2\n").status()), Contains("line 1, column 1"));
  CHECK_THAT(ErrorOf(ParseMatrixCsv("1,2\n3,NaN\n").status()), Contains("line 2, column 2"));
  CHECK_THAT(ErrorOf(ParseMatrixCsv("# only\n\n").status()), Contains("no data rows"));
}

TEST_CASE("FormatDouble is the shortest exact representation") {
  CHECK(FormatDouble(0.1) == "0.1");
  CHECK(FormatDouble(1) == "1");
  CHECK(FormatDouble(-2.5) == "-2.5");
  CHECK(FormatDouble(std::numeric_limits<double>::quiet_NaN()) == "nan");
  CHECK(FormatDouble(-std::numeric_limits<double>::infinity()) == "-inf");
  std::mt19937_64 gen(12345);
  std::uniform_int_distribution<uint64_t> bits;
  for (int i = 0; i < 20000; ++i) {
    uint64_t b = bits(gen);
    double v;
    std::memcpy(&v, &b, sizeof(v));
    if (!std::isfinite(v)) continue;
    const std::string text = FormatDouble(v);
    INFO(text);
    CHECK(std::strtod(text.c_str(), nullptr) == v);
    CHECK(text.size() <= 24);
  }
}

TEST_CASE("Sample CSV rows read back bit for bit") {
  gv1::SampleBatch batch;
  const std::vector<double> values = {0.1, 1.0 / 3, 1e-300, -2.5e300, 5e-324, -0.0};
  batch.mutable_x()->set_rows(3);
  batch.mutable_x()->set_cols(2);
  for (double v : values) batch.mutable_x()->add_values(v);
  const auto rows = FormatSampleRows(batch);
  REQUIRE(rows.ok());
  const std::string csv = FormatSampleHeader("m", 3, batch) + *rows;
  const auto parsed = ParseMatrixCsv(csv);
  REQUIRE(parsed.ok());
  CHECK(parsed->rows() == 3);
  REQUIRE(parsed->values_size() == 6);
  for (int i = 0; i < 6; ++i) {
    CHECK(std::memcmp(&parsed->values()[i], &values[i], sizeof(double)) == 0);
  }
  // Malformed batches are reported, not formatted.
  batch.mutable_x()->set_rows(4);
  CHECK(FormatSampleRows(batch).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("ParseTrainingTsv reads label<TAB>text lines") {
  const auto examples =
      ParseTrainingTsv("\xEF\xBB\xBFspam\tbuy now\r\n\nham\thello\tthere\n  \neggs\t\n");
  REQUIRE(examples.ok());
  REQUIRE(examples->size() == 3);
  CHECK((*examples)[0].label() == "spam");
  CHECK((*examples)[0].text() == "buy now");
  CHECK((*examples)[1].text() == "hello\tthere");
  CHECK((*examples)[2].label() == "eggs");
  CHECK((*examples)[2].text().empty());
  const auto unicode = ParseTrainingTsv("caf\xC3\xA9\tna\xC3\xAFve \xE2\x9C\x93\n");
  REQUIRE(unicode.ok());
  CHECK((*unicode)[0].label() == "caf\xC3\xA9");
  const auto latin1 = ParseTrainingTsv("a\tna\xEFve caf\xE9\n");  // texts are kept as bytes
  REQUIRE(latin1.ok());
  CHECK((*latin1)[0].text() == "na\xEFve caf\xE9");
}

TEST_CASE("ParseTrainingTsv errors name the line") {
  using Catch::Contains;
  CHECK_THAT(ErrorOf(ParseTrainingTsv("a\tx\nno tab here\n").status()),
             Contains("line 2: expected 'label<TAB>text' but found no tab"));
  CHECK_THAT(ErrorOf(ParseTrainingTsv("a\tx\n\n\tx\n").status()), Contains("line 3: empty label"));
  CHECK_THAT(ErrorOf(ParseTrainingTsv("a\tx\nb\xFF\tgood text\n").status()),
             Contains("line 2: the label is not valid UTF-8"));
  CHECK_THAT(ErrorOf(ParseTrainingTsv("\n \n").status()), Contains("no examples"));
  CHECK_THAT(ErrorOf(ParseTrainingTsv("").status()), Contains("no examples"));
}

TEST_CASE("ParseTextLines") {
  const auto texts = ParseTextLines("one\r\n\ntwo words\n");
  REQUIRE(texts.ok());
  CHECK(*texts == std::vector<std::string>{"one", "two words"});
  // Texts are bytes: the model's decode_error decides what invalid UTF-8 becomes.
  const auto bytes = ParseTextLines("ok\n\xC0\x80\n");
  REQUIRE(bytes.ok());
  CHECK((*bytes)[1] == "\xC0\x80");
  CHECK_THAT(ErrorOf(ParseTextLines("\n").status()), Catch::Contains("no (non-blank) lines"));
}

TEST_CASE("IsValidUtf8") {
  CHECK(IsValidUtf8(""));
  CHECK(IsValidUtf8("plain"));
  CHECK(IsValidUtf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"));  // é € 😀
  CHECK(IsValidUtf8("\xF4\x8F\xBF\xBF"));                      // U+10FFFF
  CHECK_FALSE(IsValidUtf8("\xC0\x80"));                        // overlong NUL
  CHECK_FALSE(IsValidUtf8("\xE0\x80\xAF"));                    // overlong '/'
  CHECK_FALSE(IsValidUtf8("\xED\xA0\x80"));                    // surrogate U+D800
  CHECK_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));                // U+110000
  CHECK_FALSE(IsValidUtf8("\xE2\x82"));                        // truncated
  CHECK_FALSE(IsValidUtf8("\x80"));                            // lone continuation
  CHECK_FALSE(IsValidUtf8("\xFF"));
}

TEST_CASE("JsonQuote escapes quotes, backslashes and control characters") {
  CHECK(JsonQuote("a\"b\\c") == R"("a\"b\\c")");
  CHECK(JsonQuote("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(JsonQuote(std::string("\x00\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(JsonQuote("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  CHECK(JsonQuote("a\xFF"
                  "b") ==
        "\"a\xEF\xBF\xBD"
        "b\"");

  // Every byte 0..127 survives a round trip through an independent parser.
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += "\xC3\xA9\xF0\x9F\x98\x80";
  const google::protobuf::Value parsed = ParseJson(JsonQuote(all));
  CHECK(parsed.string_value() == all);
}

TEST_CASE("JsonWriter builds valid nested documents") {
  JsonWriter w;
  w.BeginObject()
      .Key("a")
      .BeginArray()
      .Int(-1)
      .Uint(18446744073709551615ull)
      .Double(0.1)
      .Bool(true)
      .Null()
      .BeginObject()
      .EndObject()
      .BeginArray()
      .EndArray()
      .EndArray()
      .Key("nan")
      .Double(std::numeric_limits<double>::quiet_NaN())
      .Key("inf")
      .Double(std::numeric_limits<double>::infinity())
      .Key("-inf")
      .Double(-std::numeric_limits<double>::infinity())
      .Key("k\"ey")
      .String("v")
      .EndObject();
  CHECK(w.str() ==
        R"({"a":[-1,18446744073709551615,0.1,true,null,{},[]],"nan":"NaN","inf":"Infinity",)"
        R"("-inf":"-Infinity","k\"ey":"v"})");
  const google::protobuf::Value parsed = ParseJson(w.str());
  const auto& fields = parsed.struct_value().fields();
  CHECK(fields.at("a").list_value().values(2).number_value() == 0.1);
  CHECK(fields.at("nan").string_value() == "NaN");
  CHECK(fields.at("k\"ey").string_value() == "v");
}

TEST_CASE("FormatTable aligns columns") {
  CHECK(FormatTable({"NAME", "V"}, {{"a", "10"}, {"longer", "2"}}) ==
        "NAME    V\n"
        "a       10\n"
        "longer  2\n");
  CHECK(FormatTable({}, {{"k", "v"}}) == "k  v\n");
  CHECK(FormatTable({"A", "B"}, {}) == "A  B\n");
}

TEST_CASE("FormatTable aligns UTF-8 text by its width on a terminal, not its bytes") {
  CHECK(DisplayWidth("abc") == 3);
  CHECK(DisplayWidth("\xC3\xA9t\xC3\xA9") == 3);         // été
  CHECK(DisplayWidth("e\xCC\x81t\xC3\xA9") == 3);        // e + combining acute, t, é
  CHECK(DisplayWidth("\xE6\x9D\xB1\xE4\xBA\xAC") == 4);  // 東京: two wide characters
  CHECK(DisplayWidth("\xEF\xBC\xA1") == 2);              // fullwidth A
  CHECK(DisplayWidth("a\xFF") == 2);                     // a stray byte: one column
  CHECK(FormatTable({"LABEL", "N"},
                    {{"\xC3\xA9t\xC3\xA9", "1"}, {"\xE6\x9D\xB1\xE4\xBA\xAC", "2"}, {"x", "3"}}) ==
        "LABEL  N\n"
        "\xC3\xA9t\xC3\xA9    1\n"
        "\xE6\x9D\xB1\xE4\xBA\xAC   2\n"
        "x      3\n");
}

TEST_CASE("FormatModels human and JSON") {
  cv1::ListModelsResponse response;
  cv1::ModelInfo* a = response.add_models();
  a->set_name("gmm");
  a->set_version(12);
  a->set_type(cv1::GENERATIVE);
  a->set_family("gaussian_mixture");
  a->mutable_created_at()->set_seconds(1714564800);  // 2024-05-01T12:00:00Z
  (*a->mutable_labels())["team"] = "ml";
  cv1::ModelInfo* b = response.add_models();
  b->set_name("spam");
  b->set_version(1);
  b->set_type(cv1::DISCRIMINATIVE);
  b->set_family("count+multinomial_nb");
  CHECK(FormatModels(response, false) ==
        "NAME  VERSION  TYPE            FAMILY                CREATED\n"
        "gmm   12       generative      gaussian_mixture      2024-05-01T12:00:00Z\n"
        "spam  1        discriminative  count+multinomial_nb  -\n");
  const google::protobuf::Value parsed = ParseJson(FormatModels(response, true));
  const auto& models = parsed.struct_value().fields().at("models").list_value();
  REQUIRE(models.values_size() == 2);
  const auto& first = models.values(0).struct_value().fields();
  CHECK(first.at("version").number_value() == 12);
  CHECK(first.at("type").string_value() == "GENERATIVE");
  CHECK(first.at("created_at").string_value() == "2024-05-01T12:00:00Z");
  CHECK(first.at("labels").struct_value().fields().at("team").string_value() == "ml");
  CHECK(models.values(1).struct_value().fields().at("created_at").kind_case() ==
        google::protobuf::Value::kNullValue);
  CHECK(parsed.struct_value().fields().at("missing_backends").list_value().values_size() == 0);
  CHECK(parsed.struct_value().fields().at("unreadable_versions").list_value().values_size() == 0);
  CHECK(parsed.struct_value().fields().at("next_page_token").string_value().empty());
  CHECK(FormatModelWarnings(response).empty());
}

TEST_CASE("FormatModels and FormatModelWarnings give one page's next_page_token") {
  cv1::ListModelsResponse response;
  response.add_models()->set_name("gmm");
  response.set_next_page_token("Zm9v\x1b[2J");
  CHECK(ParseJson(FormatModels(response, true))
            .struct_value()
            .fields()
            .at("next_page_token")
            .string_value() == "Zm9v\x1b[2J");
  CHECK(FormatModelWarnings(response) ==
        "maas: more models may follow: the next page is --page_token=Zm9v\\x1b[2J\n");
}

// A listing with a backend down or a damaged version used to print the readable models and nothing
// else: the models of the missing backend, or the model whose latest version is damaged, vanished.
TEST_CASE("FormatModels and FormatModelWarnings say what a partial listing lacks") {
  cv1::ListModelsResponse response;
  response.add_missing_backends("maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: down");
  cv1::UnreadableVersion* bad = response.add_unreadable_versions();
  bad->set_name("gmm");
  bad->set_version(3);
  bad->set_type(cv1::GENERATIVE);
  bad->set_code("DATA_LOSS");
  bad->set_message("stored model: no ModelInfo (field 1) in the stored message");
  CHECK(FormatModelWarnings(response) ==
        "maas: warning: a backend did not answer, its models are not listed: "
        "maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: down\n"
        "maas: warning: generative model \"gmm\" version 3 cannot be read (DATA_LOSS: stored "
        "model: no ModelInfo (field 1) in the stored message); restore its file or delete the "
        "version\n");
  const google::protobuf::Value parsed = ParseJson(FormatModels(response, true));
  const auto& fields = parsed.struct_value().fields();
  REQUIRE(fields.at("missing_backends").list_value().values_size() == 1);
  CHECK_THAT(fields.at("missing_backends").list_value().values(0).string_value(),
             Catch::Contains("UNAVAILABLE"));
  const auto& unreadable = fields.at("unreadable_versions").list_value();
  REQUIRE(unreadable.values_size() == 1);
  const auto& entry = unreadable.values(0).struct_value().fields();
  CHECK(entry.at("name").string_value() == "gmm");
  CHECK(entry.at("version").number_value() == 3);
  CHECK(entry.at("type").string_value() == "GENERATIVE");
  CHECK(entry.at("code").string_value() == "DATA_LOSS");
}

TEST_CASE("FormatEstimate human and JSON") {
  gv1::EstimateLogLikelihoodResponse response;
  response.set_estimator(gv1::IMPORTANCE);
  response.set_seed(42);
  response.set_model_version(3);
  gv1::RowEstimate* row = response.add_rows();
  row->set_log_likelihood(-1.2345678);
  row->set_standard_error(0.01);
  row->set_ess(950.5);
  row->set_num_samples(1000);
  row->set_exact_log_likelihood(-std::numeric_limits<double>::infinity());
  CHECK(FormatEstimate("m", response, false) ==
        "# model=m version=3 estimator=importance seed=42\n"
        "ROW  LOG_LIKELIHOOD  STANDARD_ERROR  ESS    EXACT\n"
        "0    -1.23457        0.01            950.5  -inf\n");
  row->clear_exact_log_likelihood();
  CHECK_THAT(FormatEstimate("m", response, false), Catch::EndsWith("950.5  -\n"));
  const auto fields = ParseJson(FormatEstimate("m", response, true)).struct_value().fields();
  CHECK(fields.at("estimator").string_value() == "IMPORTANCE");
  const auto& r0 = fields.at("rows").list_value().values(0).struct_value().fields();
  CHECK(r0.at("log_likelihood").number_value() == -1.2345678);
  CHECK(r0.at("exact_log_likelihood").kind_case() == google::protobuf::Value::kNullValue);
  CHECK(r0.at("row").number_value() == 0);
}

TEST_CASE("FormatEstimate of a shard: global row numbers and exact mergeable statistics") {
  gv1::EstimateLogLikelihoodResponse response;
  response.set_estimator(gv1::PRIOR);
  response.set_seed(7);
  for (int i = 0; i < 2; ++i) {
    gv1::RowEstimate* row = response.add_rows();
    row->set_log_likelihood(-1.0 - i);
    row->mutable_statistics()->set_count(1000);
    // Values with no short decimal form: the JSON must carry them exactly (shortest round trip).
    row->mutable_statistics()->set_log_sum_w(std::nextafter(3.0 + i / 3.0, 10.0));
    row->mutable_statistics()->set_log_sum_w2(0.1 + 0.2 * i);
  }
  CHECK_THAT(FormatEstimate("m", response, false, 40, 5000),
             Catch::Contains("\n40   ") && Catch::Contains("\n41   "));
  const auto fields =
      ParseJson(FormatEstimate("m", response, true, 40, 5000)).struct_value().fields();
  CHECK(fields.at("row_offset").number_value() == 40);
  CHECK(fields.at("sample_offset").number_value() == 5000);
  const auto& rows = fields.at("rows").list_value();
  for (int i = 0; i < 2; ++i) {
    const auto& r = rows.values(i).struct_value().fields();
    CHECK(r.at("row").number_value() == 40 + i);
    const auto& stats = r.at("statistics").struct_value().fields();
    CHECK(stats.at("count").number_value() == 1000);
    CHECK(stats.at("log_sum_w").number_value() == response.rows(i).statistics().log_sum_w());
    CHECK(stats.at("log_sum_w2").number_value() == response.rows(i).statistics().log_sum_w2());
  }
}

TEST_CASE("FormatTrain, FormatClassify and FormatDelete") {
  maas::discriminative::v1::TrainResponse train;
  train.mutable_info()->set_name("spam");
  train.mutable_info()->set_version(2);
  train.mutable_info()->set_family("count+multinomial_nb");
  train.mutable_summary()->set_num_documents(10);
  train.mutable_summary()->set_num_features(345);
  train.mutable_summary()->add_classes("ham");
  train.mutable_summary()->add_classes("spam");
  CHECK(FormatTrain(train, false) ==
        "name       spam\n"
        "version    2\n"
        "family     count+multinomial_nb\n"
        "documents  10\n"
        "classes    2: ham, spam\n"
        "features   345\n");
  CHECK(ParseJson(FormatTrain(train, true)).struct_value().fields().at("features").number_value() ==
        345);

  maas::discriminative::v1::ClassifyResponse classify;
  classify.add_results()->set_label("x");
  const auto fields =
      ParseJson(FormatClassify({"line\nbreak \"q\""}, classify, true)).struct_value().fields();
  CHECK(fields.at("results")
            .list_value()
            .values(0)
            .struct_value()
            .fields()
            .at("text")
            .string_value() == "line\nbreak \"q\"");

  cv1::DeleteModelResponse deleted;
  deleted.add_deleted_versions(1);
  deleted.add_deleted_versions(2);
  CHECK(FormatDelete("gmm", cv1::GENERATIVE, deleted, false) ==
        "deleted gmm (generative) versions: 1, 2\n");
  CHECK(FormatDelete("gmm", cv1::GENERATIVE, deleted, true) ==
        R"({"name":"gmm","type":"GENERATIVE","deleted_versions":[1,2]})"
        "\n");
}

// Labels and names come from the server (or echo the command line): printed raw, a label such as
// "sp\x1b[31mRED\x07" recoloured the terminal and broke the table's alignment in `maas train` and
// `maas classify` (`maas evaluate` escaped it). Every human output escapes them; JSON stays JSON.
TEST_CASE("Human outputs escape control characters in labels and names, JSON does not") {
  const std::string evil = "sp\x1b[31mRED\x07";
  const std::string shown = "sp\\x1b[31mRED\\x07";
  const auto no_raw_control = [](const std::string& text) {
    INFO(text);
    for (const char c : text) {
      const unsigned char u = static_cast<unsigned char>(c);
      CHECK((u == '\n' || (u >= 0x20 && u != 0x7f)));
    }
    CHECK(text.find("\xc2\x9b") == std::string::npos);
  };

  maas::discriminative::v1::TrainResponse train;
  train.mutable_info()->set_name(
      "n\x1b"
      "a");
  train.mutable_info()->set_version(2);
  train.mutable_info()->set_family("f\r");
  train.mutable_summary()->set_num_documents(2);
  train.mutable_summary()->add_classes(evil);
  train.mutable_summary()->add_classes("food");
  const std::string train_text = FormatTrain(train, false);
  no_raw_control(train_text);
  CHECK(train_text ==
        "name       n\\x1ba\n"
        "version    2\n"
        "family     f\\x0d\n"
        "documents  2\n"
        "classes    2: " +
            shown +
            ", food\n"
            "features   0\n");
  CHECK(ParseJson(FormatTrain(train, true))
            .struct_value()
            .fields()
            .at("classes")
            .list_value()
            .values(0)
            .string_value() == evil);
  CHECK_THAT(FormatTrain(train, true), Catch::Contains("sp\\u001b[31mRED\\u0007"));

  maas::discriminative::v1::ClassifyResponse classify;
  maas::discriminative::v1::Classification* result = classify.add_results();
  result->set_label(evil);
  result->add_scores()->set_label(evil);
  result->mutable_scores(0)->set_probability(0.75);
  result->add_scores()->set_label("food");
  result->mutable_scores(1)->set_probability(0.25);
  classify.add_results()->set_label("food");
  const std::string classify_text = FormatClassify({"a", "b"}, classify, false);
  no_raw_control(classify_text);
  CHECK(classify_text ==
        "INDEX  LABEL              PROBABILITIES\n"
        "0      " +
            shown + "  " + shown +
            "=0.75 food=0.25\n"
            "1      food\n");
  const auto classified = ParseJson(FormatClassify({"a", "b"}, classify, true));
  CHECK(classified.struct_value()
            .fields()
            .at("results")
            .list_value()
            .values(0)
            .struct_value()
            .fields()
            .at("label")
            .string_value() == evil);

  cv1::ListModelsResponse models;
  cv1::ModelInfo* info = models.add_models();
  info->set_name(evil);
  info->set_version(1);
  info->set_type(cv1::DISCRIMINATIVE);
  info->set_family(
      "fam\x9b"
      "ily\xc2\x9b"
      "2J");  // a stray byte, and U+009B (CSI)
  const std::string models_text = FormatModels(models, false);
  no_raw_control(models_text);
  CHECK_THAT(models_text, Catch::Contains(shown + "  1        discriminative  "
                                                  "fam\\x9bily\\xc2\\x9b2J  -\n"));
  CHECK(ParseJson(FormatModels(models, true))
            .struct_value()
            .fields()
            .at("models")
            .list_value()
            .values(0)
            .struct_value()
            .fields()
            .at("name")
            .string_value() == evil);
  models.add_missing_backends("gen\x1b]0;title\x07");
  cv1::UnreadableVersion* bad = models.add_unreadable_versions();
  bad->set_name(evil);
  bad->set_version(3);
  bad->set_type(cv1::GENERATIVE);
  bad->set_code("DATA\nLOSS");
  bad->set_message("bad\x1b[2J");
  const std::string warnings = FormatModelWarnings(models);
  no_raw_control(warnings);
  CHECK(std::count(warnings.begin(), warnings.end(), '\n') == 2);
  CHECK_THAT(warnings, Catch::Contains("gen\\x1b]0;title\\x07\n") &&
                           Catch::Contains("\"" + shown + "\" version 3") &&
                           Catch::Contains("(DATA\\x0aLOSS: bad\\x1b[2J)"));

  generative::v1::FitModelResponse fit;
  fit.mutable_info()->set_name(evil);
  fit.mutable_info()->set_family("u\x1b");
  const std::string fit_text = FormatFit(fit, false);
  no_raw_control(fit_text);
  CHECK_THAT(fit_text, Catch::StartsWith("name            " + shown + "\n") &&
                           Catch::Contains("family          u\\x1b\n"));
  CHECK_THAT(FormatFit(fit, true), Catch::StartsWith(R"({"name":"sp\u001b[31mRED\u0007",)"));

  // Names from the command line, echoed: escaped the same way.
  cv1::DeleteModelResponse deleted;
  deleted.add_deleted_versions(1);
  CHECK(FormatDelete(evil, cv1::GENERATIVE, deleted, false) ==
        "deleted " + shown + " (generative) versions: 1\n");
  CHECK_THAT(FormatDelete(evil, cv1::GENERATIVE, deleted, true),
             Catch::StartsWith(R"({"name":"sp\u001b[31mRED\u0007",)"));
  gv1::EstimateLogLikelihoodResponse estimate;
  estimate.add_rows();
  CHECK_THAT(FormatEstimate(evil, estimate, false),
             Catch::StartsWith("# model=" + shown + " version=0 "));
  gv1::SampleBatch batch;
  CHECK_THAT(FormatSampleHeader(evil, 1, batch), Catch::StartsWith("# model=" + shown + " "));
  // `get`: protobuf's text format escapes them itself.
  maas::discriminative::v1::GetModelResponse got;
  got.mutable_info()->set_name(evil);
  const absl::StatusOr<std::string> got_text = FormatMessage(got, false);
  REQUIRE(got_text.ok());
  no_raw_control(*got_text);
}

// A 2-class evaluation: 3 ham (2 right), 2 spam (both right).
maas::discriminative::v1::EvaluateResponse TwoClassEvaluation() {
  maas::discriminative::v1::EvaluateResponse response;
  response.set_num_documents(5);
  response.set_model_version(4);
  response.set_accuracy(0.8);
  response.set_macro_f1(0.8);
  response.set_weighted_f1(0.8);
  response.set_log_loss(0.1 / 3);
  const auto add = [&response](const std::string& label, double p, double r, double f1,
                               double support) {
    maas::discriminative::v1::ClassMetrics* c = response.add_classes();
    c->set_label(label);
    c->set_precision(p);
    c->set_recall(r);
    c->set_f1(f1);
    c->set_support(support);
  };
  add("ham", 1.0, 2.0 / 3, 0.8, 3);
  add("spam", 2.0 / 3, 1.0, 0.8, 2);
  cv1::Matrix* m = response.mutable_confusion_matrix();
  m->set_rows(2);
  m->set_cols(2);
  for (double v : {2.0, 1.0, 0.0, 2.0}) m->add_values(v);
  return response;
}

TEST_CASE("FormatEvaluate human: summary, per-class table and labelled confusion matrix") {
  const auto text = FormatEvaluate("spam-model", TwoClassEvaluation(), false);
  REQUIRE(text.ok());
  CHECK(*text ==
        "model        spam-model\n"
        "version      4\n"
        "documents    5\n"
        "accuracy     0.8\n"
        "macro F1     0.8\n"
        "weighted F1  0.8\n"
        "log loss     0.0333333\n"
        "\n"
        "CLASS  PRECISION  RECALL    F1   SUPPORT\n"
        "ham    1          0.666667  0.8  3\n"
        "spam   0.666667   1         0.8  2\n"
        "\n"
        "confusion matrix (rows: true class, columns: predicted class)\n"
        "TRUE\\PREDICTED  ham  spam\n"
        "ham             2    1\n"
        "spam            0    2\n");

  // Weighted supports and counts keep their fractions; control bytes in labels are escaped.
  auto weighted = TwoClassEvaluation();
  weighted.mutable_classes(0)->set_support(2.5);
  weighted.mutable_classes(1)->set_label("sp\x01m");
  weighted.mutable_confusion_matrix()->set_values(1, 0.25);
  const auto escaped = FormatEvaluate("m", weighted, false);
  REQUIRE(escaped.ok());
  CHECK_THAT(*escaped, Catch::Contains("ham      1          0.666667  0.8  2.5\n"));
  CHECK_THAT(*escaped, Catch::Contains("TRUE\\PREDICTED  ham  sp\\x01m\n"));
  CHECK_THAT(*escaped, Catch::Contains("ham             2    0.25\n"));
}

TEST_CASE("FormatEvaluate JSON is the response's fields, exactly, with the matrix as rows") {
  const auto response = TwoClassEvaluation();
  const auto json = FormatEvaluate("spam-model", response, true);
  REQUIRE(json.ok());
  CHECK_THAT(*json, Catch::EndsWith("}\n"));
  CHECK(std::count(json->begin(), json->end(), '\n') == 1);
  const auto fields = ParseJson(*json).struct_value().fields();
  CHECK(fields.at("model").string_value() == "spam-model");
  CHECK(fields.at("model_version").number_value() == 4);
  CHECK(fields.at("num_documents").number_value() == 5);
  CHECK(fields.at("accuracy").number_value() == response.accuracy());
  CHECK(fields.at("macro_f1").number_value() == response.macro_f1());
  CHECK(fields.at("weighted_f1").number_value() == response.weighted_f1());
  CHECK(fields.at("log_loss").number_value() == response.log_loss());  // bit for bit
  const auto& classes = fields.at("classes").list_value();
  REQUIRE(classes.values_size() == 2);
  for (int i = 0; i < 2; ++i) {
    const auto& c = classes.values(i).struct_value().fields();
    CHECK(c.at("label").string_value() == response.classes(i).label());
    CHECK(c.at("precision").number_value() == response.classes(i).precision());
    CHECK(c.at("recall").number_value() == response.classes(i).recall());
    CHECK(c.at("f1").number_value() == response.classes(i).f1());
    CHECK(c.at("support").number_value() == response.classes(i).support());
  }
  const auto& matrix = fields.at("confusion_matrix").list_value();
  REQUIRE(matrix.values_size() == 2);
  for (int r = 0; r < 2; ++r) {
    const auto& row = matrix.values(r).list_value();
    REQUIRE(row.values_size() == 2);
    for (int c = 0; c < 2; ++c) {
      CHECK(row.values(c).number_value() == response.confusion_matrix().values(r * 2 + c));
    }
  }
}

TEST_CASE("FormatEvaluate refuses a confusion matrix that does not match the classes") {
  using Catch::Contains;
  auto response = TwoClassEvaluation();
  response.mutable_confusion_matrix()->mutable_values()->RemoveLast();
  CHECK_THAT(ErrorOf(FormatEvaluate("m", response, false).status()),
             Contains("malformed confusion matrix"));
  response = TwoClassEvaluation();
  response.add_classes()->set_label("third");
  CHECK_THAT(ErrorOf(FormatEvaluate("m", response, true).status()),
             Contains("2 x 2 for 3 classes"));
}

TEST_CASE("FormatMessage prints parseable text format and proto JSON") {
  gv1::GetModelResponse response;
  response.mutable_info()->set_name("u");
  response.mutable_spec()->mutable_uniform()->add_low(0);
  response.mutable_spec()->mutable_uniform()->add_high(1.5);
  const auto text = FormatMessage(response, false);
  REQUIRE(text.ok());
  CHECK_THAT(*text, Catch::StartsWith("# maas.generative.v1.GetModelResponse\n"));
  CHECK_THAT(*text, Catch::Contains("high: 1.5"));
  const auto json = FormatMessage(response, true);
  REQUIRE(json.ok());
  const auto fields = ParseJson(*json).struct_value().fields();
  CHECK(fields.at("spec").struct_value().fields().count("uniform") == 1);
  // int64 fields follow the proto3 JSON mapping (strings); defaults are printed.
  CHECK(fields.at("info").struct_value().fields().at("version").string_value() == "0");
}

TEST_CASE("BuildFitConfig maps flags onto the family's hyperparameters") {
  using Catch::Contains;
  CommandArgs args;
  args.command = "fit";
  args.name = "m";
  args.data = "rows.csv";
  args.family = "gaussian_mixture";
  args.flags_set = {"name", "data", "family", "n_components", "covariance_type",
                    "tol",  "init", "seed"};
  args.n_components = 3;
  args.covariance_type = "diag";
  args.tol = 1e-5;
  args.init = "k-means++";
  args.seed = 9;
  REQUIRE(ValidateCommandArgs(args).ok());
  auto config = BuildFitConfig(args);
  REQUIRE(config.ok());
  CHECK(config->name() == "m");
  CHECK(config->seed() == 9);
  CHECK(config->gaussian_mixture().n_components() == 3);
  CHECK(config->gaussian_mixture().covariance_type() == generative::v1::DIAG);
  CHECK(config->gaussian_mixture().tol() == 1e-5);
  CHECK(!config->gaussian_mixture().has_reg_covar());
  CHECK(config->gaussian_mixture().init_params() == generative::v1::INIT_K_MEANS_PLUS_PLUS);
  args.covariance_type = "tied";
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--covariance_type"));
  args.covariance_type = "full";
  args.flags_set.insert("latent_dim");
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()),
             Contains("--latent_dim does not apply to --family=gaussian_mixture"));

  args.family = "ppca";
  args.flags_set = {"name", "data", "family"};
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("needs --latent_dim"));
  args.flags_set.insert("latent_dim");
  args.latent_dim = 2;
  CHECK(BuildFitConfig(args)->ppca().latent_dim() == 2);
  args.family = "factor_analysis";
  args.flags_set.insert("max_iter");
  args.max_iter = 50;
  CHECK(BuildFitConfig(args)->factor_analysis().max_iter() == 50);
  args.family = "bernoulli_mixture";
  args.flags_set = {"name", "data", "family", "min_probability"};
  args.min_probability = 0.01;
  CHECK(BuildFitConfig(args)->bernoulli_mixture().min_probability() == 0.01);
  args.family = "uniform";
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()),
             Contains("--min_probability does not apply to --family=uniform"));
  args.flags_set = {"name", "data", "family"};
  CHECK(BuildFitConfig(args)->has_uniform());
  args.family = "mlp";
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--family must be"));
  args.flags_set = {"name", "family"};
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("'fit' needs --data"));
}

TEST_CASE("FormatFit human and JSON") {
  generative::v1::FitModelResponse response;
  response.mutable_info()->set_name("gmm");
  response.mutable_info()->set_version(2);
  response.mutable_info()->set_family("gaussian_mixture");
  response.mutable_info()->set_dimension(3);
  response.mutable_trace()->add_log_likelihood(-4.5);
  response.mutable_trace()->add_log_likelihood(-4.25);
  response.mutable_trace()->set_converged(true);
  response.mutable_trace()->set_n_iter(2);
  response.mutable_trace()->set_num_rows(100);
  response.mutable_trace()->set_seed(7);
  CHECK(FormatFit(response, false) ==
        "name            gmm\n"
        "version         2\n"
        "family          gaussian_mixture\n"
        "dimension       3\n"
        "rows            100\n"
        "iterations      2\n"
        "converged       yes\n"
        "log_likelihood  -4.25\n"
        "seed            7\n");
  CHECK(FormatFit(response, true) ==
        R"({"name":"gmm","version":2,"family":"gaussian_mixture","dimension":3,"num_rows":100,)"
        R"("n_iter":2,"converged":true,"seed":7,"log_likelihood":[-4.5,-4.25]})"
        "\n");
}

TEST_CASE("ValidateCommandArgs") {
  using Catch::Contains;
  const auto error = [](const CommandArgs& args) {
    return std::string(ValidateCommandArgs(args).message());
  };
  CommandArgs args;
  CHECK_THAT(error(args), Contains("no command"));
  args.command = "fly";
  CHECK_THAT(error(args), Contains("unknown command 'fly'"));

  args = CommandArgs();
  args.command = "models";
  args.flags_set = {"json", "target", "all_versions"};
  CHECK(ValidateCommandArgs(args).ok());
  args.flags_set.insert("model");
  CHECK_THAT(error(args), Contains("--model does not apply to 'models'"));
  args.flags_set = {"page_size"};
  CHECK_THAT(error(args), Contains("--page_size must be >= 1"));
  args.page_size = -5;
  CHECK_THAT(error(args), Contains("--page_size must be >= 1 (servers give at most 1000), got -5"));
  args.page_size = 5000;  // the servers take it as 1000
  CHECK(ValidateCommandArgs(args).ok());
  args.flags_set = {"page_token"};
  args.page_token = "t";
  CHECK_THAT(error(args), Contains("--page_token needs --page_size"));
  args.flags_set = {"page_token", "page_size", "all_versions"};
  CHECK(ValidateCommandArgs(args).ok());
  args.command = "get";
  args.model = "m";
  args.flags_set = {"model", "page_size"};
  CHECK_THAT(error(args), Contains("--page_size does not apply to 'get'"));

  args = CommandArgs();
  args.command = "sample";
  args.model = "m";
  args.flags_set = {"model"};
  CHECK_THAT(error(args), Contains("'sample' needs --num_samples"));
  args.flags_set.insert("num_samples");
  CHECK_THAT(error(args), Contains("--num_samples must be >= 1"));
  args.num_samples = 10;
  CHECK(ValidateCommandArgs(args).ok());
  args.positional = {"extra"};
  CHECK_THAT(error(args), Contains("takes no arguments"));

  args = CommandArgs();
  args.command = "estimate";
  args.model = "m";
  args.flags_set = {"model"};
  CHECK_THAT(error(args), Contains("exactly one of --x and --x_file"));
  args.flags_set = {"model", "x", "x_file"};
  args.x_file = "f";
  CHECK_THAT(error(args), Contains("exactly one of --x and --x_file"));
  args.flags_set = {"model", "x", "estimator"};
  args.estimator = "magic";
  CHECK_THAT(error(args), Contains("unknown estimator 'magic'"));
  args.estimator = "AIS";
  CHECK(ValidateCommandArgs(args).ok());

  args = CommandArgs();
  args.command = "classify";
  args.model = "m";
  args.flags_set = {"model"};
  CHECK_THAT(error(args), Contains("texts as arguments or --text_file"));
  args.positional = {"hello"};
  CHECK(ValidateCommandArgs(args).ok());
  args.flags_set.insert("text_file");
  args.text_file = "f";
  CHECK_THAT(error(args), Contains("not both"));

  args = CommandArgs();
  args.command = "get";
  args.flags_set = {"model", "type"};
  args.model = "";
  CHECK_THAT(error(args), Contains("--model must not be empty"));
  args.model = "m";
  args.type = "both";
  CHECK_THAT(error(args), Contains("unknown model type"));
  args.type = "discriminative";
  CHECK(ValidateCommandArgs(args).ok());
}

TEST_CASE("ValidateCommandArgs: evaluate needs --model and --data, takes --weighted") {
  using Catch::Contains;
  const auto error = [](const CommandArgs& args) {
    return std::string(ValidateCommandArgs(args).message());
  };
  CommandArgs args;
  args.command = "evaluate";
  args.flags_set = {"data"};
  args.data = "test.tsv";
  CHECK_THAT(error(args), Contains("'evaluate' needs --model"));
  args.flags_set = {"model"};
  args.model = "spam";
  CHECK_THAT(error(args), Contains("'evaluate' needs --data"));
  args.flags_set = {"model", "data", "model_version", "weighted", "json", "target"};
  args.version = 2;
  args.train.weighted = true;
  CHECK(ValidateCommandArgs(args).ok());
  args.data = "";
  CHECK_THAT(error(args), Contains("--data must not be empty"));
  args.data = "test.tsv";
  // Train's and classify's own flags do not apply.
  for (const std::string flag :
       {"name", "partial", "classes", "vectorizer", "top_k", "text_file"}) {
    INFO(flag);
    CommandArgs other = args;
    other.flags_set.insert(flag);
    CHECK_THAT(error(other), Contains("flag --" + flag + " does not apply to 'evaluate'"));
  }
  args.positional = {"extra"};
  CHECK_THAT(error(args), Contains("'evaluate' takes no arguments"));

  CHECK_THAT(UsageText(),
             Contains("\n  evaluate --model NAME [--model_version V] --data FILE.tsv"));
  const std::string usage = CommandUsage("evaluate");
  CHECK_THAT(usage, Contains("evaluate --model NAME"));
  CHECK_THAT(usage, Contains("--weighted"));
  CHECK_THAT(usage, !Contains("classify --model"));
  CHECK_THAT(usage, !Contains("train    --name"));
}

TEST_CASE("BuildTrainConfig maps the train flags onto the vectorizer and classifier configs") {
  using Catch::Contains;
  namespace dv1 = ::maas::discriminative::v1;
  CommandArgs args;
  args.command = "train";
  args.name = "m";
  args.data = "d.tsv";
  args.flags_set = {"name", "data"};
  // No option: both configs unset (the service's defaults, or the continued version's).
  auto config = BuildTrainConfig(args);
  REQUIRE(config.ok());
  CHECK(!config->has_vectorizer());
  CHECK(!config->has_classifier());

  args.flags_set = {"name",     "data",        "partial",       "classes",   "vectorizer",
                    "tfidf",    "use_idf",     "n_features",    "norm",      "hashing_norm",
                    "analyzer", "ngram_range", "strip_accents", "lowercase", "classifier",
                    "alpha",    "class_prior", "binarize"};
  args.partial = true;
  args.train.classes = "b, a";
  args.train.vectorizer = "hashing";
  args.train.tfidf = true;
  args.train.use_idf = false;
  args.train.n_features = 256;
  args.train.norm = "l1";
  args.train.hashing_norm = "none";
  args.train.analyzer = "char_wb";
  args.train.ngram_range = "2,4";
  args.train.strip_accents = "ascii";
  args.train.lowercase = false;
  args.train.classifier = "bernoulli_nb";
  args.train.alpha = 0.25;
  args.train.class_prior = "0.4,0.6";
  args.train.binarize = "none";
  REQUIRE(ValidateCommandArgs(args).ok());
  config = BuildTrainConfig(args);
  REQUIRE(config.ok());
  CHECK(config->partial());
  CHECK(std::vector<std::string>(config->classes().begin(), config->classes().end()) ==
        std::vector<std::string>{"b", "a"});
  const dv1::HashingVectorizerConfig& hashing = config->vectorizer().hashing();
  CHECK(hashing.n_features() == 256);
  CHECK(hashing.norm() == dv1::NORM_NONE);
  CHECK(!hashing.has_alternate_sign());
  CHECK(hashing.text().analyzer() == dv1::ANALYZER_CHAR_WB);
  CHECK(hashing.text().ngram_min() == 2);
  CHECK(hashing.text().ngram_max() == 4);
  CHECK(hashing.text().strip_accents() == dv1::STRIP_ACCENTS_ASCII);
  CHECK((hashing.text().has_lowercase() && !hashing.text().lowercase()));
  CHECK(config->vectorizer().tfidf().norm() == dv1::NORM_L1);
  CHECK((config->vectorizer().tfidf().has_use_idf() && !config->vectorizer().tfidf().use_idf()));
  CHECK(!config->vectorizer().tfidf().has_smooth_idf());
  const dv1::BernoulliNbConfig& nb = config->classifier().bernoulli_nb();
  CHECK(nb.alpha() == 0.25);
  CHECK(nb.disable_binarize());
  CHECK(std::vector<double>(nb.class_prior().begin(), nb.class_prior().end()) ==
        std::vector<double>{0.4, 0.6});
  CHECK(!nb.has_fit_prior());

  // Options that do not apply to the chosen kinds are usage errors naming the flag.
  args.flags_set.insert("max_features");
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--max_features"));
  args.flags_set.erase("max_features");
  args.train.classifier = "multinomial_nb";
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--binarize"));
  args.flags_set.erase("binarize");
  args.train.tfidf = false;
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--hashing_norm"));
  args.flags_set.erase("hashing_norm");
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--use_idf"));
  args.flags_set = {"name", "data", "min_df", "max_df"};
  args.train.min_df = "3";
  args.train.max_df = "0.5";
  config = BuildTrainConfig(args);
  REQUIRE(config.ok());
  CHECK(config->vectorizer().count().min_df().count() == 3);
  CHECK(config->vectorizer().count().max_df().fraction() == 0.5);
  args.train.min_df = "-1";
  CHECK_THAT(std::string(ValidateCommandArgs(args).message()), Contains("--min_df"));
}

}  // namespace
}  // namespace maas::client::cli

// Fuzz target: the CLI's readers of user files and arguments (inline matrices, CSV, training TSV,
// text lines, enum names). Invariants: every accepted matrix is rectangular with finite values,
// every accepted training example has a non-empty UTF-8 label, and every text (any bytes: the
// model's decode_error handles them) is one line of the input, without its line break.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "clients/cpp/cli.h"
#include "tests/fuzz/fuzz_input.h"

namespace maas::fuzz {

std::vector<std::string> MaasFuzzSeeds() {
  return {
      std::string("\x00") + "1,2;3,4",
      std::string("\x01") + "# model=m seed=7\n0.5,1e-3\r\n-2,3.25\n\n4,5\n",
      std::string("\x02") +
          "\xef\xbb\xbfsports\tthe striker scored\r\nfood\tknead the dough\n\ntech\t\n",
      std::string("\x03") + "one text\r\n\n\xc3\xa9t\xc3\xa9\n",
      std::string("\x04") + "AIS",
      std::string("\x01") + "1,nan\n2,inf\n1,2,3\n",
      std::string("\x02") + "label without tab\n\tempty label\n",
  };
}

namespace {

void CheckMatrix(const absl::StatusOr<common::v1::Matrix>& m) {
  if (!m.ok()) return;
  if (static_cast<uint64_t>(m->rows()) * m->cols() != static_cast<uint64_t>(m->values_size())) {
    std::abort();
  }
  for (double v : m->values()) {
    if (!std::isfinite(v)) std::abort();
  }
}

}  // namespace
}  // namespace maas::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace maas::client::cli;
  maas::fuzz::FuzzInput input(data, size);
  const uint8_t which = input.Byte();
  const absl::string_view text(input.Rest().data(), input.Rest().size());
  switch (which % 5) {
    case 0:
      maas::fuzz::CheckMatrix(ParseMatrix(text));
      break;
    case 1:
      maas::fuzz::CheckMatrix(ParseMatrixCsv(text));
      break;
    case 2: {
      auto examples = ParseTrainingTsv(text);
      if (examples.ok()) {
        if (examples->empty()) std::abort();
        for (const auto& e : *examples) {
          if (e.label().empty() || !IsValidUtf8(e.label())) std::abort();
          if (e.text().find('\n') != std::string::npos || text.find(e.text()) == text.npos) {
            std::abort();
          }
        }
      }
      break;
    }
    case 3: {
      auto lines = ParseTextLines(text);
      if (lines.ok()) {
        for (const auto& line : *lines) {
          if (line.find('\n') != std::string::npos || text.find(line) == text.npos) std::abort();
        }
      }
      break;
    }
    default:
      (void)ParseEstimator(text);
      (void)ParseModelType(text);
      (void)JsonQuote(text);
      break;
  }
  return 0;
}

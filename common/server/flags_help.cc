#include "common/server/flags_help.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"

namespace maas::server {
namespace {

// Abseil reports a flag's file with its leading slashes removed (its default normalize_filename),
// so an absolute __FILE__ must be compared the same way; relative paths are unchanged.
std::string_view WithoutLeadingSlashes(std::string_view path) {
  const size_t first = path.find_first_not_of("\\/");
  return first == std::string_view::npos ? std::string_view() : path.substr(first);
}

}  // namespace

void PrintFlagsHelp(std::ostream& out, std::string_view main_file) {
  out << absl::ProgramUsageMessage() << "\n\nFlags:\n";
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (WithoutLeadingSlashes(flag->Filename()) == WithoutLeadingSlashes(main_file)) {
      flags.push_back(flag);
    }
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    out << "  --" << flag->Name() << " (default: ";
    const std::string value = flag->DefaultValue();
    if (value.empty()) {
      out << "\"\"";
    } else {
      out << value;
    }
    out << ")\n";
    for (absl::string_view line : absl::StrSplit(flag->Help(), '\n')) {
      out << "      " << line << "\n";
    }
  }
  out << "\n--helpfull lists the flags of every library too.\n";
}

void HandleHelpFlag(int argc, char** argv, std::string_view main_file) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--help" || arg == "-help" || arg == "-h" || arg == "--helpshort") {
      PrintFlagsHelp(std::cout, main_file);
      std::cout.flush();
      std::exit(0);
    }
  }
}

}  // namespace maas::server

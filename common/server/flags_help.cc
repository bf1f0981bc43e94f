#include "common/server/flags_help.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
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

// Prints each flag of `flags` as "  --name (default: value)" and its help, indented.
void PrintFlags(std::ostream& out, std::vector<const absl::CommandLineFlag*> flags) {
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
}

bool IsOwn(const absl::CommandLineFlag& flag, std::string_view main_file) {
  return WithoutLeadingSlashes(flag.Filename()) == WithoutLeadingSlashes(main_file);
}

}  // namespace

void PrintFlagsHelp(std::ostream& out, std::string_view main_file) {
  out << absl::ProgramUsageMessage() << "\n\nFlags:\n";
  std::vector<const absl::CommandLineFlag*> own;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsOwn(*flag, main_file)) own.push_back(flag);
  }
  PrintFlags(out, std::move(own));
  out << "\n--helpfull lists the flags of every library too.\n";
}

void PrintFullFlagsHelp(std::ostream& out, std::string_view main_file) {
  out << absl::ProgramUsageMessage() << "\n\nFlags:\n";
  std::map<std::string, std::vector<const absl::CommandLineFlag*>> by_file;
  std::vector<const absl::CommandLineFlag*> own;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsOwn(*flag, main_file)) {
      own.push_back(flag);
    } else {
      by_file[std::string(WithoutLeadingSlashes(flag->Filename()))].push_back(flag);
    }
  }
  PrintFlags(out, std::move(own));
  for (auto& [file, flags] : by_file) {
    out << "\nFlags from " << file << ":\n";
    PrintFlags(out, std::move(flags));
  }
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
    if (arg == "--helpfull" || arg == "-helpfull") {
      PrintFullFlagsHelp(std::cout, main_file);
      std::cout.flush();
      std::exit(0);
    }
  }
}

}  // namespace maas::server

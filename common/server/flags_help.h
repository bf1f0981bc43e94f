// --help for the maas binaries: lists the binary's own flags (those defined in its main.cc) with
// their defaults and exits 0, instead of Abseil's default (which lists nothing for a main.cc whose
// name differs from the binary's and exits 1); --helpfull adds the libraries' flags, also exiting
// 0.
//
//   int main(int argc, char** argv) {
//     absl::SetProgramUsageMessage("maas-generative: ...");
//     maas::server::HandleHelpFlag(argc, argv, __FILE__);  // before absl::ParseCommandLine
//     absl::ParseCommandLine(argc, argv);
#ifndef MAAS_COMMON_SERVER_FLAGS_HELP_H_
#define MAAS_COMMON_SERVER_FLAGS_HELP_H_

#include <ostream>
#include <string_view>

namespace maas::server {

// When argv holds --help, -help, -h or --helpshort: prints the usage message and every flag
// defined in `main_file` (pass __FILE__ from main.cc), sorted, to stdout, and exits 0; with
// --helpfull those, then every library's flags by file (Abseil's own --helpfull exits 1).
// Otherwise returns.
void HandleHelpFlag(int argc, char** argv, std::string_view main_file);

// What HandleHelpFlag prints for --help and for --helpfull. Exposed for tests.
void PrintFlagsHelp(std::ostream& out, std::string_view main_file);
void PrintFullFlagsHelp(std::ostream& out, std::string_view main_file);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_FLAGS_HELP_H_

// The `maas` commands: each reads its inputs, makes its calls through a Client and writes its
// output. Flags are parsed in main.cc; parsing and formatting live in cli.h.
#ifndef MAAS_CLIENTS_CPP_COMMANDS_H_
#define MAAS_CLIENTS_CPP_COMMANDS_H_

#include <cstddef>
#include <ostream>

#include "absl/status/status.h"
#include "clients/cpp/cli.h"
#include "clients/cpp/client.h"

namespace maas::client {

// classify sends its texts (the arguments or --text_file's lines) in Classify requests of at most
// kClassifyBatchTexts texts and at most kClassifyBatchBytes bytes of text (but at least one text),
// well within the servers' limits (--max_texts_per_request, default 100000; 64 MiB messages), as
// the Python CLI sends batches of 1000. The batches after the first ask for the model version the
// first one was answered with, so that every text meets the same version, and the results are
// printed together, as one call's.
inline constexpr size_t kClassifyBatchTexts = 1000;
inline constexpr size_t kClassifyBatchBytes = Client::kDefaultFitChunkBytes;

// What a command that succeeded says about the result it wrote.
struct CommandOutcome {
  // models: a backend did not answer (the gateway's missing_backends, in any page asked for), so
  // its models are not listed. `maas` then exits 3 unless --allow_partial. Versions that cannot
  // be read do not count: they are listed (unreadable_versions).
  bool incomplete = false;
};

// Runs args.command and writes its result to `out` (samples are written batch by batch as they
// arrive) and warnings about a result that is complete as far as it goes but partial (a listing
// with a backend down or a damaged version, one page of a listing) to `warnings` (never with
// --json, whose output holds them). REQUIRES: cli::ValidateCommandArgs(args).ok(). Returns the
// first error (bad input file, RPC error, malformed response); `out` may then hold a part of the
// output (a sample stream cut short). When it returns OK and `outcome` is not null, *outcome says
// whether the result is incomplete.
absl::Status RunCommand(Client& client, const cli::CommandArgs& args, std::ostream& out,
                        std::ostream& warnings, CommandOutcome* outcome = nullptr);

}  // namespace maas::client

#endif  // MAAS_CLIENTS_CPP_COMMANDS_H_

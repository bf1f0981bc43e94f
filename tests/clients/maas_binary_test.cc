// The `maas` binary itself: exit codes, usage errors and a few commands against the fake services.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "clients/cpp/cli.h"
#include "tests/clients/fake_services.h"

namespace maas::client {
namespace {

struct Result {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/maas_binary_test_" +
         std::to_string(::getpid()) + "_" + name;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `maas <args>` through the shell (args are trusted test strings, already quoted), with the
// environment variables of env ("NAME=value ...") set.
Result Run(const std::string& args, const std::string& env = "") {
  const std::string out_path = TempPath("out");
  const std::string err_path = TempPath("err");
  const std::string command = (env.empty() ? "" : "env " + env + " ") + "'" + MAAS_CLI_BINARY +
                              "' " + args + " >" + out_path + " 2>" + err_path;
  const int status = std::system(command.c_str());
  Result result;
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = Slurp(out_path);
  result.err = Slurp(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return result;
}

TEST_CASE("maas usage errors exit 2 with one line pointing to --help") {
  for (const std::string args :
       {"", "fly", "--nosuchflag models", "models --model=x", "sample --model m",
        "--num_samples=abc sample --model m", "estimate --model m", "--timeout=-1 models",
        "classify --model m", "--model", "evaluate --model m", "evaluate --data f.tsv",
        "evaluate --model m --data f.tsv --name x", "evaluate --model m --data f.tsv --bogus"}) {
    INFO(args);
    const Result result = Run(args);
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.err, Catch::StartsWith("maas: usage error: "));
    CHECK_THAT(result.err, Catch::Contains("--help')\n"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
  }
}

TEST_CASE("maas usage errors with --json are one JSON line, an unknown command points to --help") {
  for (const std::string args :
       {"--json", "--json fly", "fly --json", "--json --nosuchflag models",
        "--json models --model=x", "--json --timeout=-1 models", "--json=true sample --model m",
        "models --model=x --json", "--json --model"}) {
    INFO(args);
    const Result result = Run(args);
    CHECK(result.exit_code == 2);
    CHECK_THAT(result.err, Catch::StartsWith(
                               R"({"error":{"code":"INVALID_ARGUMENT","message":"usage error: )"));
    CHECK_THAT(result.err, Catch::EndsWith("--help')\"}}\n"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
  }
  // --nojson (or --json=false) after --json: the plain line.
  CHECK_THAT(Run("--json --nojson fly").err, Catch::StartsWith("maas: usage error: "));
  // A known command points to its own help, an unknown one to the general help.
  CHECK(Run("fly").err == "maas: usage error: unknown command 'fly' (see 'maas --help')\n");
  CHECK_THAT(Run("sample --model m").err, Catch::EndsWith("(see 'maas sample --help')\n"));
  CHECK_THAT(Run("--json fly").err, Catch::Contains("unknown command 'fly' (see 'maas --help')"));
}

TEST_CASE("maas keeps gRPC core's log lines off stderr unless GRPC_VERBOSITY asks for them") {
  testing::FakeServer server;
  // A real certificate as the CA of a plaintext server: the TLS handshake fails, and gRPC core
  // logs a line for each attempt.
  const std::string ca = TempPath("self_signed_ca.pem"), key = TempPath("self_signed_ca.key");
  REQUIRE(std::system(
              ("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=maas-test -keyout " +
               key + " -out " + ca + " >/dev/null 2>&1")
                  .c_str()) == 0);
  const std::string args =
      "--timeout=5 --target=" + server.target() + " --tls_ca_file=" + ca + " models";
  Result result = Run("--json " + args);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith(R"({"error":{"code":"UNAVAILABLE","message":)"));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  result = Run(args);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("maas: UNAVAILABLE: "));
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  // Asked for: gRPC's own lines come too (before the CLI's line), but never with --json.
  result = Run(args, "GRPC_VERBOSITY=ERROR");
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') > 1);
  CHECK_THAT(result.err, Catch::EndsWith("\n") && Catch::Contains("\nmaas: UNAVAILABLE: "));
  result = Run("--json " + args, "GRPC_VERBOSITY=ERROR");
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  std::remove(ca.c_str());
  std::remove(key.c_str());
}

// A CA file holding no certificate used to end in "UNAVAILABLE: empty address list:" (gRPC
// could not build the channel's TLS context, and its log line saying why is kept off stderr).
TEST_CASE("maas names a --tls_ca_file that holds no certificate") {
  testing::FakeServer server;
  const std::string ca = TempPath("bad_ca.pem");
  std::ofstream(ca)
      << "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n";
  for (const char* json : {"", "--json "}) {
    CAPTURE(json);
    const Result result = Run(std::string(json) + "--timeout=5 --target=" + server.target() +
                              " --tls_ca_file=" + ca + " models");
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err, Catch::Contains("FAILED_PRECONDITION") &&
                               Catch::Contains("--tls_ca_file " + ca) &&
                               Catch::Contains("holds no readable PEM certificate"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  }
  std::remove(ca.c_str());
}

// A token file holding a byte that cannot be in a header value (an inner newline, non-ASCII)
// made gRPC abort the CLI (SIGABRT, exit 134, no error line), even for `maas models`.
TEST_CASE("maas refuses a token file that is not a bearer token with one error line") {
  testing::FakeServer server(/*with_gateway=*/true);
  const std::string target = "--timeout=20 --target=" + server.target();
  const std::string token = TempPath("token");
  for (const std::string content : {"ab\ncd\n", "caf\xc3\xa9", "\tab\x01"}) {
    CAPTURE(content);
    std::ofstream(token, std::ios::binary | std::ios::trunc) << content;
    Result result = Run(target + " --auth_token_file=" + token + " models");
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err, Catch::StartsWith("maas: INVALID_ARGUMENT: auth token file '" + token +
                                             "': the auth token holds byte 0x") &&
                               Catch::Contains("printable ASCII (space to '~', 0x20-0x7E)"));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
    result = Run("--json " + target + " --auth_token_file=" + token + " models");
    CHECK(result.exit_code == 1);
    CHECK_THAT(result.err,
               Catch::StartsWith(
                   R"({"error":{"code":"INVALID_ARGUMENT","message":"auth token file ')" + token));
    CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
    CHECK(result.out.empty());
  }
  // Whitespace around the token is still trimmed, and the token is sent.
  std::ofstream(token, std::ios::trunc) << "  secret\r\n";
  Result result = Run(target + " --auth_token_file=" + token + " estimate --model private --x 1");
  CHECK(result.exit_code == 0);
  CHECK(result.err.empty());
  std::ofstream(token, std::ios::trunc) << " \n";
  result = Run(target + " --auth_token_file=" + token + " models");
  CHECK(result.exit_code == 1);
  CHECK(result.err == "maas: INVALID_ARGUMENT: auth token file '" + token + "' is empty\n");
  std::remove(token.c_str());
}

TEST_CASE("maas COMMAND --help shows that command, --version the CLI's version") {
  Result result = Run("sample --help");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("sample   --model NAME [--model_version V]"));
  CHECK_THAT(result.out, Catch::Contains("Stream samples"));
  CHECK_THAT(result.out, !Catch::Contains("Classify texts"));
  result = Run("help train");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("train    --name NAME --data FILE.tsv"));
  CHECK_THAT(result.out, !Catch::Contains("Stream samples"));
  result = Run("evaluate --help");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out,
             Catch::Contains("evaluate --model NAME [--model_version V] --data FILE.tsv"));
  CHECK_THAT(result.out, !Catch::Contains("Stream samples"));
  result = Run("--help");
  CHECK_THAT(result.out, Catch::Contains("\n  evaluate --model NAME"));
  result = Run("--version");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::StartsWith("maas git-"));
}

TEST_CASE("maas file errors: a directory, a header line, escaped bytes, --json errors") {
  const std::string dir = TempPath("dir");
  REQUIRE(mkdir(dir.c_str(), 0700) == 0);
  Result result = Run("train --name t --data " + dir);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("is a directory; give a file"));
  const std::string tsv = TempPath("tsv");
  {
    std::ofstream out(tsv);
    out << "label\ttext\nspam\tbuy now\n";
  }
  result = Run("train --name t --data " + tsv);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains("line 1 looks like a header"));
  result = Run("--json train --name t --data " + tsv);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err,
             Catch::StartsWith("{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":"));
  result = Run("estimate --model m --x_file " + dir);
  CHECK_THAT(result.err, Catch::Contains("is a directory"));
  {
    std::ofstream out(tsv);
    out << "sp\x01am\xff\n";  // no tab, a control byte and a stray byte
  }
  result = Run("train --name t --data " + tsv);
  CHECK(result.exit_code == 1);
  CHECK(result.err.find('\x01') == std::string::npos);
  std::remove(tsv.c_str());
  rmdir(dir.c_str());
  CHECK(maas::client::cli::EscapeForTerminal("a\x01"
                                             "b\xff"
                                             "c\xc3\xa9") ==
        "a\\x01b\\xff"
        "c\xc3\xa9");
  CHECK(maas::client::cli::EscapeForTerminal(std::string(20, 'x'), 5) ==
        "xxxxx... (15 more bytes)");
}

TEST_CASE("maas --help prints the usage on stdout") {
  const Result result = Run("--help");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::StartsWith("usage: maas"));
  // --helpfull, which the servers accept, was a usage error (exit 2); the CLI has no library flags.
  const Result full = Run("--helpfull");
  CHECK(full.exit_code == 0);
  CHECK(full.out == result.out);
}

TEST_CASE("maas errors print CODE and message and exit 1") {
  testing::FakeServer server;
  const std::string target = "--target=" + server.target();
  Result result = Run(target + " sample --model missing --num_samples 1");
  CHECK(result.exit_code == 1);
  CHECK(result.err == "maas: NOT_FOUND: model 'missing' not found\n");

  result = Run(target + " estimate --model m --x '1,2;3'");
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("maas: INVALID_ARGUMENT: --x: row 2 has 1 columns"));

  result = Run(target + " train --name t --data /nonexistent/file.tsv");
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("maas: NOT_FOUND: cannot open '/nonexistent/file.tsv'"));

  // No gateway service at the target (it failed UNIMPLEMENTED, naming the gateway's method): the
  // services' own listings.
  result = Run(target + " models");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("gmm") && Catch::Contains("spam"));
}

// `maas models` printed a listing that lacked a backend's models with a warning on stderr but
// exited 0, so a script that checks the status alone took it for the whole listing.
TEST_CASE("maas models exits 3 when a backend did not answer, 0 with --allow_partial") {
  testing::FakeServer server(/*with_gateway=*/true);
  const std::string target = "--target=" + server.target();
  common::v1::ListModelsResponse listing;
  for (const std::string name : {"a", "b", "c"}) {
    common::v1::ModelInfo* info = listing.add_models();
    info->set_name(name);
    info->set_version(1);
    info->set_type(common::v1::GENERATIVE);
  }
  common::v1::UnreadableVersion* bad = listing.add_unreadable_versions();
  bad->set_name("damaged");
  bad->set_version(2);
  bad->set_type(common::v1::GENERATIVE);
  bad->set_code("DATA_LOSS");
  // Versions that cannot be read are listed: the listing is complete, exit 0.
  server.gateway().set_list_models(listing);
  Result result = Run(target + " models");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.err, Catch::Contains("\"damaged\" version 2 cannot be read"));

  const std::string down =
      "maas.discriminative.v1.DiscriminativeService: UNAVAILABLE: connection refused";
  listing.add_missing_backends(down);
  server.gateway().set_list_models(listing);
  result = Run(target + " models");
  CHECK(result.exit_code == 3);
  CHECK_THAT(result.out,
             Catch::StartsWith("NAME ") && Catch::Contains("\na ") && Catch::Contains("\nc "));
  CHECK_THAT(
      result.err,
      Catch::Contains(
          "maas: warning: a backend did not answer, its models are not listed: " + down + "\n"));
  // --json: the document as ever (missing_backends says what it lacks), the same status.
  result = Run(target + " --json models");
  CHECK(result.exit_code == 3);
  CHECK_THAT(result.out, Catch::StartsWith("{\"models\":[{\"name\":\"a\"") &&
                             Catch::Contains("\"missing_backends\":[\"" + down + "\"]"));
  CHECK(result.err.empty());
  // One page that lacks the backend is incomplete too.
  result = Run(target + " models --page_size 1");
  CHECK(result.exit_code == 3);
  CHECK_THAT(result.err, Catch::Contains("--page_token=") && Catch::Contains(down));
  // --allow_partial: the same output, exit 0.
  result = Run(target + " models --allow_partial");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("\nc "));
  CHECK_THAT(result.err, Catch::Contains(down));
  result = Run(target + " --json models --allow_partial --page_size 2");
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("\"missing_backends\":[\"" + down + "\"]"));
  // It is a flag of models only; the help says what 3 means.
  CHECK(Run(target + " get --model a --allow_partial").exit_code == 2);
  result = Run("models --help");
  CHECK_THAT(result.out, Catch::Contains("--allow_partial") && Catch::Contains("exits 3"));
  CHECK_THAT(Run("--help").out, Catch::Contains("3 listing incomplete: a backend did not answer"));
}

TEST_CASE("maas commands against the fake services") {
  testing::FakeServer server;
  const std::string target = "--target=" + server.target();

  Result result = Run(target + " sample --model gmm --num_samples=3 --seed 11 --batch_size 2");
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "# model=gmm version=4 seed=11 start_index=0 num_samples=3 x_cols=3 latent_cols=0\n"
        "0,11,0\n"
        "1,11,0.5\n"
        "2,11,1\n");

  // The sample output is valid --x_file input.
  const std::string csv = TempPath("x.csv");
  std::ofstream(csv) << result.out;
  result = Run("--json " + target + " estimate --model exact --x_file " + csv);
  std::remove(csv.c_str());
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::StartsWith(R"({"model":"exact","model_version":2,)"));
  CHECK_THAT(result.out, Catch::Contains(R"("log_likelihood":-14,)"));  // -(2 + 11 + 1), row 3
  CHECK(result.err.empty());

  const std::string tsv = TempPath("train.tsv");
  std::ofstream(tsv) << "a\tfirst\nb\tsecond\n\na\tthird\n";
  result = Run(target + " train --name t --data=" + tsv);
  std::remove(tsv.c_str());
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("documents  3\n"));
  CHECK_THAT(result.out, Catch::Contains("classes    2: a, b\n"));

  result = Run(target + " --auth_token_file=/nonexistent/token models");
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("maas: NOT_FOUND: cannot open"));

  const std::string evaluate_tsv = TempPath("evaluate.tsv");
  std::ofstream(evaluate_tsv)
      << "long\t2\ta long text\nshort\t1\thi\nshort\t1\tanother long text\n";
  result = Run(target + " evaluate --model spam --weighted --data " + evaluate_tsv);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains("documents    3\n"));
  CHECK_THAT(result.out, Catch::Contains("accuracy     0.75\n"));  // weights 2 + 1 of 4
  CHECK_THAT(result.out, Catch::Contains("TRUE\\PREDICTED  long  short\n"
                                         "long            2     0\n"
                                         "short           1     1\n"));
  result = Run(target + " evaluate --model missing --weighted --data " + evaluate_tsv);
  CHECK(result.exit_code == 1);
  CHECK(result.err == "maas: NOT_FOUND: model 'missing' not found\n");
  // Unweighted, the same lines are 'label<TAB>text' (the weight is a part of the text).
  result = Run(target + " --json evaluate --model spam --data " + evaluate_tsv);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.out, Catch::Contains(R"("accuracy":0.6666666666666666,)"));
  std::ofstream(evaluate_tsv, std::ios::app) << "other\tx\n";
  result = Run(target + " --json evaluate --model spam --data " + evaluate_tsv);
  CHECK(result.exit_code == 1);
  CHECK(result.err ==
        "{\"error\":{\"code\":\"INVALID_ARGUMENT\",\"message\":\"label 'other' is not a class of "
        "the model\"}}\n");
  std::remove(evaluate_tsv.c_str());
  result = Run(target + " evaluate --model spam --data " + evaluate_tsv);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::StartsWith("maas: NOT_FOUND: cannot open '" + evaluate_tsv));

  result = Run(target + " classify --model spam -- hi -dash-text-");
  CHECK(result.exit_code == 0);
  CHECK(result.out ==
        "INDEX  LABEL  PROBABILITIES\n"
        "0      short  long=0.25 short=0.75\n"
        "1      long   long=0.75 short=0.25\n");
}

}  // namespace
}  // namespace maas::client

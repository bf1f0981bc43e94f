// TLS credentials from PEM files, for servers (the server kit), the gateway's backend channels and
// clients.
//
//   MAAS_ASSIGN_OR_RETURN(auto creds, ChannelCredentialsFromFiles(ca_file, cert_file, key_file));
//   auto channel = grpc::CreateChannel("host:443", creds);
#ifndef MAAS_COMMON_TLS_CREDENTIALS_H_
#define MAAS_COMMON_TLS_CREDENTIALS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace maas::tls {

// The content of a PEM file. FAILED_PRECONDITION naming `what` (the flag or option) when it cannot
// be read or is empty.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, std::string_view what);

// Server side: cert_file and key_file empty = plaintext; both set = TLS; client_ca_file set as well
// = mutual TLS (clients must present a certificate signed by that CA). INVALID_ARGUMENT for other
// combinations; FAILED_PRECONDITION naming the flag and file for a file that cannot be read, holds
// no PEM certificate / key, or a key that is not the certificate's (tls_check.h: gRPC would only
// fail to bind the port, which reads like "port in use").
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFiles(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file);

// How errors name the three files of ChannelCredentialsFromFiles (the caller's flags).
struct ChannelFileNames {
  std::string ca = "CA file";
  std::string cert = "client certificate file";
  std::string key = "client key file";
};

// Client side: every file empty = plaintext; ca_file set = TLS verifying the server's certificate
// against that CA; cert_file and key_file set as well = present a client certificate (mutual TLS).
// INVALID_ARGUMENT for other combinations; FAILED_PRECONDITION naming the file (as `names` says)
// when it cannot be read or parsed, or the key is not the certificate's (gRPC would only fail each
// connection attempt, e.g. "empty address list").
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFiles(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file,
    const ChannelFileNames& names = ChannelFileNames());

}  // namespace maas::tls

#endif  // MAAS_COMMON_TLS_CREDENTIALS_H_

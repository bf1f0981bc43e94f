#include "common/tls/credentials.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/tls/tls_check.h"

namespace maas::tls {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, std::string_view what) {
  const std::string name(what);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read ", name, " \"", path, "\": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (content.str().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " \"", path, "\" is empty (a PEM file was expected)"));
  }
  return content.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFiles(
    const std::string& cert_file, const std::string& key_file, const std::string& client_ca_file) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file must be given together (both empty = plaintext)");
  }
  if (cert_file.empty()) {
    if (!client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file");
    }
    return grpc::InsecureServerCredentials();
  }
  MAAS_ASSIGN_OR_RETURN(std::string cert, ReadPemFile(cert_file, "tls_cert_file"));
  MAAS_ASSIGN_OR_RETURN(std::string key, ReadPemFile(key_file, "tls_key_file"));
  MAAS_RETURN_IF_ERROR(CheckCertificateKeyPair(cert, key, cert_file, key_file));
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!client_ca_file.empty()) {
    MAAS_ASSIGN_OR_RETURN(std::string ca, ReadPemFile(client_ca_file, "tls_client_ca_file"));
    MAAS_RETURN_IF_ERROR(CheckCaCertificates(ca, client_ca_file, "tls_client_ca_file"));
    ssl = grpc::SslServerCredentialsOptions(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = std::move(ca);
  }
  ssl.pem_key_cert_pairs.push_back({std::move(key), std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFromFiles(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file,
    const ChannelFileNames& names) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs both its cert and key file");
  }
  if (ca_file.empty()) {
    if (!cert_file.empty()) {
      return absl::InvalidArgumentError(
          "a client certificate (mutual TLS) needs the CA file of the server too");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  MAAS_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPemFile(ca_file, names.ca));
  MAAS_RETURN_IF_ERROR(CheckCaCertificates(ssl.pem_root_certs, ca_file, names.ca));
  if (!cert_file.empty()) {
    MAAS_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadPemFile(cert_file, names.cert));
    MAAS_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadPemFile(key_file, names.key));
    MAAS_RETURN_IF_ERROR(CheckCertificateKeyPair(ssl.pem_cert_chain, ssl.pem_private_key, cert_file,
                                                 key_file, names.cert, names.key));
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace maas::tls

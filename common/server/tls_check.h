// Checks a TLS certificate / private key pair before a server listens with it, so a mismatch is
// reported as such (gRPC only fails to bind the port, which reads like "port in use").
#ifndef MAAS_COMMON_SERVER_TLS_CHECK_H_
#define MAAS_COMMON_SERVER_TLS_CHECK_H_

#include <string>

#include "absl/status/status.h"

namespace maas::server {

// OK when `cert_pem` holds a certificate (the first of a chain) and `key_pem` its private key.
// FAILED_PRECONDITION naming the files otherwise: unparseable certificate, unparseable key, or a
// key that is not the certificate's.
absl::Status CheckCertificateKeyPair(const std::string& cert_pem, const std::string& key_pem,
                                     const std::string& cert_file, const std::string& key_file);

}  // namespace maas::server

#endif  // MAAS_COMMON_SERVER_TLS_CHECK_H_

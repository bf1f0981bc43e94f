// Checks a TLS certificate / private key pair, and a CA file, before a server listens with them
// or a channel uses them, so a mistake is reported as such (gRPC only fails to bind the port,
// which reads like "port in use", or logs an error on every connection attempt).
#ifndef MAAS_COMMON_TLS_TLS_CHECK_H_
#define MAAS_COMMON_TLS_TLS_CHECK_H_

#include <string>

#include "absl/status/status.h"

namespace maas::tls {

// OK when `cert_pem` holds a certificate (the first of a chain) and `key_pem` its private key.
// FAILED_PRECONDITION naming the files otherwise: unparseable certificate, unparseable key, or a
// key that is not the certificate's.
// The flags are named as `cert_flag` and `key_flag` (the gateway's backend side has its own).
absl::Status CheckCertificateKeyPair(const std::string& cert_pem, const std::string& key_pem,
                                     const std::string& cert_file, const std::string& key_file,
                                     const std::string& cert_flag = "tls_cert_file",
                                     const std::string& key_flag = "tls_key_file");

// OK when `ca_pem` (the content of `ca_file`, given by flag `ca_flag`) holds at least one PEM
// certificate; FAILED_PRECONDITION naming the flag and file otherwise (gRPC would only fail later:
// a server to bind its port, a channel on every connection attempt).
absl::Status CheckCaCertificates(const std::string& ca_pem, const std::string& ca_file,
                                 const std::string& ca_flag);

}  // namespace maas::tls

#endif  // MAAS_COMMON_TLS_TLS_CHECK_H_

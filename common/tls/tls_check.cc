#include "common/tls/tls_check.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace maas::tls {

absl::Status CheckCertificateKeyPair(const std::string& cert_pem, const std::string& key_pem,
                                     const std::string& cert_file, const std::string& key_file,
                                     const std::string& cert_flag, const std::string& key_flag) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())), BIO_free);
  if (cert_bio == nullptr || key_bio == nullptr)
    return absl::ResourceExhaustedError("out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (cert == nullptr) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(cert_flag, " ", cert_file, " holds no PEM certificate"));
  }
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (key == nullptr) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(key_flag, " ", key_file, " holds no (unencrypted) PEM private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(key_flag, " ", key_file, " is not the private key of the certificate in ",
                     cert_flag, " ", cert_file, "; give the key the certificate was issued for"));
  }
  return absl::OkStatus();
}

absl::Status CheckCaCertificates(const std::string& ca_pem, const std::string& ca_file,
                                 const std::string& ca_flag) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size())), BIO_free);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  std::unique_ptr<X509, decltype(&X509_free)> first(
      PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
  if (first == nullptr) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(ca_flag, " ", ca_file,
                     " holds no readable PEM certificate (a CA certificate was expected)"));
  }
  return absl::OkStatus();
}

}  // namespace maas::tls

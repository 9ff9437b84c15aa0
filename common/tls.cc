#include "common/tls.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace redflag {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioDeleter> MemBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " file ", path, " cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string pem = ss.str();
  if (pem.empty())
    return absl::InvalidArgumentError(absl::StrCat(what, " file ", path, " is empty"));
  if (!absl::StrContains(pem, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " file ", path, " is not PEM"));
  }
  return pem;
}

absl::StatusOr<TlsMaterial> TlsMaterial::Load(const TlsFiles& files) {
  TlsMaterial m;
  if (!files.ca_file.empty()) {
    REDFLAG_ASSIGN_OR_RETURN(m.ca_pem, ReadPemFile(files.ca_file, "CA certificate"));
    auto ca_bio = MemBio(m.ca_pem);
    std::unique_ptr<X509, X509Deleter> ca(
        PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
    if (!ca) {
      return absl::InvalidArgumentError(
          absl::StrCat("CA certificate file ", files.ca_file, " holds no X.509 certificate"));
    }
  }
  REDFLAG_ASSIGN_OR_RETURN(m.cert_pem, ReadPemFile(files.cert_file, "certificate"));
  REDFLAG_ASSIGN_OR_RETURN(m.key_pem, ReadPemFile(files.key_file, "private key"));

  auto cert_bio = MemBio(m.cert_pem);
  std::unique_ptr<X509, X509Deleter> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate file ", files.cert_file, " holds no X.509 certificate"));
  }
  auto key_bio = MemBio(m.key_pem);
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat("private key file ", files.key_file, " holds no private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "private key ", files.key_file, " does not match certificate ", files.cert_file));
  }
  if (X509_cmp_time(X509_get0_notAfter(cert.get()), nullptr) <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", files.cert_file, " has expired"));
  }
  return m;
}

std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsMaterial& m) {
  grpc::SslServerCredentialsOptions opts(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_root_certs = m.ca_pem;
  opts.pem_key_cert_pairs.push_back({m.key_pem, m.cert_pem});
  return grpc::SslServerCredentials(opts);
}

std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const TlsMaterial& m) {
  grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  opts.pem_key_cert_pairs.push_back({m.key_pem, m.cert_pem});
  return grpc::SslServerCredentials(opts);
}

absl::Status RequireTls13ProcessWide() {
  static constexpr char kConfig[] =
      "openssl_conf = openssl_init\n"
      "[openssl_init]\nssl_conf = ssl_sect\n"
      "[ssl_sect]\nsystem_default = redflag_tls13\n"
      "[redflag_tls13]\nMinProtocol = TLSv1.3\nProtocol = -TLSv1.2\n";
  if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, nullptr) != 1) {
    return absl::InternalError("OpenSSL initialisation failed");
  }
  BIO* bio = BIO_new_mem_buf(kConfig, sizeof(kConfig) - 1);
  CONF* conf = NCONF_new(nullptr);
  long error_line = 0;
  bool ok = bio != nullptr && conf != nullptr && NCONF_load_bio(conf, bio, &error_line) == 1 &&
            CONF_modules_load(conf, "openssl_conf", 0) == 1;
  NCONF_free(conf);
  BIO_free(bio);
  if (!ok) return absl::InternalError("cannot load the TLS 1.3-only OpenSSL configuration");
  return absl::OkStatus();
}

std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsMaterial& m) {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = m.ca_pem;
  opts.pem_private_key = m.key_pem;
  opts.pem_cert_chain = m.cert_pem;
  return grpc::SslCredentials(opts);
}

std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const std::string& ca_pem) {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = ca_pem;
  return grpc::SslCredentials(opts);
}

grpc::ChannelArguments ClientChannelArguments(const std::string& authority) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10'000);
  if (!authority.empty()) args.SetSslTargetNameOverride(authority);
  return args;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const std::string& authority) {
  return grpc::CreateCustomChannel(target, creds, ClientChannelArguments(authority));
}

absl::StatusOr<std::string> PeerIdentity(const grpc::ServerContextBase& ctx) {
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("caller presented no client certificate");
  }
  for (const auto& uri : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    std::string s(uri.data(), uri.size());
    if (absl::StartsWith(s, kSpiffePrefix)) return s.substr(sizeof(kSpiffePrefix) - 1);
  }
  return absl::UnauthenticatedError("client certificate names no redflag service identity");
}

absl::Status PeerPolicy::Check(const grpc::ServerContextBase& ctx) const {
  REDFLAG_ASSIGN_OR_RETURN(std::string who, PeerIdentity(ctx));
  for (const auto& a : allowed_) {
    if (a == who) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("service \"", who,
                   "\" may not call this method (allowed: ", absl::StrJoin(allowed_, ", "), ")"));
}

}  // namespace redflag

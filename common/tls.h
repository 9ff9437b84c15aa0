// TLS material and gRPC credentials. Internal services use mTLS with the internal
// CA; each certificate names its service as a SAN URI spiffe://redflag.internal/<service>,
// and PeerIdentity() reads that back so each RPC can check *which* service calls.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/status.h"

namespace redflag {

inline constexpr char kSpiffePrefix[] = "spiffe://redflag.internal/";

// PEM contents of a CA bundle, certificate chain and private key, checked to parse
// and to belong together.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  static absl::StatusOr<TlsMaterial> Load(const TlsFiles& files);
};

// Reads a PEM file; errors name the file and what is wrong with it.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

// mTLS: clients must present a certificate that chains to `ca_pem`.
std::shared_ptr<grpc::ServerCredentials> MutualTlsServerCredentials(const TlsMaterial& m);
// Server-authenticated TLS (the public gateway port); client certificates not requested.
std::shared_ptr<grpc::ServerCredentials> TlsServerCredentials(const TlsMaterial& m);

// Makes every TLS context this process creates afterwards TLS 1.3-only, server and client.
// gRPC 1.51's C++ API has no minimum-version setter (its SSL credentials pin the minimum at
// 1.2), but it creates its contexts with OpenSSL, which applies the "system_default" SSL
// configuration at SSL_CTX_new: this loads such a configuration (MinProtocol TLSv1.3, and
// TLS 1.2 disabled as an option, which gRPC's explicit minimum does not re-enable). Call
// before the first gRPC server or channel.
absl::Status RequireTls13ProcessWide();
// Client side of mTLS (service to service).
std::shared_ptr<grpc::ChannelCredentials> MutualTlsChannelCredentials(const TlsMaterial& m);
// Client side of plain TLS, trusting only `ca_pem` (agent to gateway).
std::shared_ptr<grpc::ChannelCredentials> TlsChannelCredentials(const std::string& ca_pem);

// The channel arguments every RedFlag client uses: keepalive pings every 30 s (also without
// calls), a 10 s ping timeout, reconnect backoff capped at 10 s; `authority` overrides the
// TLS target name when not empty.
grpc::ChannelArguments ClientChannelArguments(const std::string& authority = "");

// Channel with explicit keepalive settings; `authority` overrides the TLS target
// name when the address is not the certificate's DNS name (empty: use the address).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const std::string& authority = "");

// Service name from the peer certificate's spiffe://redflag.internal/<name> URI SAN,
// or UNAUTHENTICATED when there is none.
absl::StatusOr<std::string> PeerIdentity(const grpc::ServerContextBase& ctx);

// Which internal callers may use an RPC.
class PeerPolicy {
 public:
  PeerPolicy(std::initializer_list<std::string> allowed) : allowed_(allowed) {}
  // PERMISSION_DENIED naming the caller when it is not allowed.
  absl::Status Check(const grpc::ServerContextBase& ctx) const;

 private:
  std::vector<std::string> allowed_;
};

}  // namespace redflag

// Returns the policy's refusal from a gRPC handler when the calling service is not allowed.
#define REDFLAG_CHECK_PEER(policy, ctx)                                                   \
  do {                                                                                    \
    ::absl::Status redflag_peer_status_ = (policy).Check(*(ctx));                         \
    if (!redflag_peer_status_.ok()) return ::redflag::ToGrpcStatus(redflag_peer_status_); \
  } while (0)

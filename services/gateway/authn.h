// Caller authentication at the public edge: operator JWTs with a minimum role, agent
// JWTs for the agent audience. Pure CPU work (HMAC), safe on completion threads.
// Every refusal increments redflag_auth_failures_total{reason}.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/jwt.h"

namespace redflag::gateway {

enum class Role { kViewer = 1, kOperator = 2, kAdmin = 3 };

class Authenticator {
 public:
  Authenticator(JwtCodec jwt, prometheus::Registry& metrics);

  // The operator behind the call's bearer token, if its role is at least `min_role`.
  absl::StatusOr<Actor> Operator(const grpc::ServerContextBase& ctx, Role min_role);
  // The agent's verified claims (subject = agent id).
  absl::StatusOr<JwtClaims> Agent(const grpc::ServerContextBase& ctx);
  // Counts a refusal made elsewhere at the edge.
  void CountFailure(const std::string& reason);

 private:
  absl::StatusOr<JwtClaims> Verify(const grpc::ServerContextBase& ctx, const char* audience);
  JwtCodec jwt_;
  prometheus::Family<prometheus::Counter>& failures_;
};

// The metadata value for `key`, or empty.
std::string Metadata(const grpc::ServerContextBase& ctx, const char* key);

}  // namespace redflag::gateway

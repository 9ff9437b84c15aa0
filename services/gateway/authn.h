// Caller authentication at the public edge: operator JWTs with a minimum role, agent
// JWTs for the agent audience, each bound to a session that must not be revoked (see
// RevokedSessions). Pure CPU work (HMAC, one hash lookup), safe on completion threads.
// Every refusal increments redflag_auth_failures_total{reason} and is reported for the
// audit trail. A source address that keeps failing has its further bad tokens refused
// outright (RESOURCE_EXHAUSTED, not reported again) for a while; a valid token is always
// served, so clients sharing an address (NAT, load balancers) never pay for a neighbour.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <functional>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/jwt.h"
#include "services/gateway/rate_limiter.h"
#include "services/gateway/revoked_sessions.h"

namespace redflag::gateway {

enum class Role { kViewer = 1, kOperator = 2, kAdmin = 3 };

class Authenticator {
 public:
  // Must not block: called on completion threads (the gateway sends it asynchronously).
  using FailureReporter = std::function<void(const std::string& reason, const Actor& actor)>;

  Authenticator(JwtCodec jwt, prometheus::Registry& metrics, FailureLockout& lockout,
                RevokedSessions& revoked, FailureReporter report);

  // The operator behind the call's bearer token, if its role is at least `min_role`.
  absl::StatusOr<Actor> Operator(const grpc::ServerContextBase& ctx, Role min_role);
  // The agent's verified claims (subject = agent id).
  absl::StatusOr<JwtClaims> Agent(const grpc::ServerContextBase& ctx);
  // Counts and reports a refusal made elsewhere at the edge.
  void CountFailure(const grpc::ServerContextBase& ctx, const std::string& reason,
                    const std::string& actor = "");

 private:
  absl::StatusOr<JwtClaims> Verify(const grpc::ServerContextBase& ctx, const char* audience);
  JwtCodec jwt_;
  prometheus::Family<prometheus::Counter>& failures_;
  FailureLockout& lockout_;
  RevokedSessions& revoked_;
  FailureReporter report_;
};

// The metadata value for `key`, or empty.
std::string Metadata(const grpc::ServerContextBase& ctx, const char* key);

}  // namespace redflag::gateway

#include "services/gateway/authn.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"

namespace redflag::gateway {
namespace {

int Rank(const std::string& role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kViewer:
      return "viewer";
  }
  return "?";
}

// "invalid token: expired" -> "expired", a bounded label value.
std::string ReasonLabel(const absl::Status& s) {
  std::string m(s.message());
  size_t colon = m.find(": ");
  std::string r = colon == std::string::npos ? "missing_token" : m.substr(colon + 2);
  for (char& c : r) c = (c == ' ' || c == '-') ? '_' : c;
  return r;
}

}  // namespace

std::string Metadata(const grpc::ServerContextBase& ctx, const char* key) {
  auto it = ctx.client_metadata().find(key);
  return it == ctx.client_metadata().end() ? std::string()
                                           : std::string(it->second.data(), it->second.size());
}

Authenticator::Authenticator(JwtCodec jwt, prometheus::Registry& metrics, FailureLockout& lockout,
                             RevokedSessions& revoked, FailureReporter report)
    : jwt_(std::move(jwt)),
      revoked_(revoked),
      failures_(prometheus::BuildCounter()
                    .Name("redflag_auth_failures_total")
                    .Help("Authentication failures by reason")
                    .Register(metrics)),
      lockout_(lockout),
      report_(std::move(report)) {}

void Authenticator::CountFailure(const grpc::ServerContextBase& ctx, const std::string& reason,
                                 const std::string& actor) {
  failures_.Add({{"reason", reason}}).Increment();
  Actor who{actor, "", ctx.peer()};
  report_(reason, who);
  if (lockout_.RecordFailure(SourceIp(ctx.peer()))) report_("source_locked_out", who);
}

absl::StatusOr<JwtClaims> Authenticator::Verify(const grpc::ServerContextBase& ctx,
                                                const char* audience) {
  absl::StatusOr<std::string> token = BearerToken(Metadata(ctx, "authorization"));
  absl::StatusOr<JwtClaims> claims =
      token.ok() ? jwt_.Verify(*token, audience, absl::Now()) : token.status();
  if (claims.ok()) {
    // Bound to a session that must still be live: logout and refresh-token reuse revoke it.
    absl::Status live = claims->sid.empty()
                            ? absl::UnauthenticatedError(
                                  "invalid token: carries no session; refresh it or log in again")
                            : revoked_.Check(claims->sid, claims->iat);
    if (live.ok()) {
      // A valid token is served whatever its address did: clients behind one NAT share an
      // address, and one of them guessing must not shut the others out. Checking an HMAC
      // costs less than the refusal's bookkeeping, so the lockout saves nothing by going
      // first.
      return claims;
    }
    claims = live;
  }
  // A locked-out source's bad tokens are refused without being reported again.
  if (absl::Status locked = lockout_.Check(SourceIp(ctx.peer())); !locked.ok()) {
    failures_.Add({{"reason", "locked_out"}}).Increment();
    return locked;
  }
  CountFailure(ctx, ReasonLabel(claims.status()));
  return claims;
}

absl::StatusOr<Actor> Authenticator::Operator(const grpc::ServerContextBase& ctx, Role min_role) {
  REDFLAG_ASSIGN_OR_RETURN(JwtClaims c, Verify(ctx, kOperatorAudience));
  if (Rank(c.role) < static_cast<int>(min_role)) {
    failures_.Add({{"reason", "insufficient_role"}}).Increment();
    report_("insufficient_role", Actor{c.sub, c.role, ctx.peer()});
    return absl::PermissionDeniedError(absl::StrCat("role ", c.role, " may not do this; requires ",
                                                    RoleName(min_role), " or higher"));
  }
  return Actor{c.sub, c.role, ctx.peer()};
}

absl::StatusOr<JwtClaims> Authenticator::Agent(const grpc::ServerContextBase& ctx) {
  return Verify(ctx, kAgentAudience);
}

}  // namespace redflag::gateway

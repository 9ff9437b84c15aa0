// The gateway's mTLS client stubs for the internal services (one channel each,
// shared by all calls; gRPC multiplexes). Addresses from REDFLAG_AUTH_ADDR,
// REDFLAG_AGENTS_ADDR, REDFLAG_UPDATES_ADDR.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/tls.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "redflag/v1/auth.grpc.pb.h"
#include "redflag/v1/updates.grpc.pb.h"

namespace redflag::gateway {

struct Backends {
  std::unique_ptr<v1::AuthService::Stub> auth;
  std::unique_ptr<v1::AgentsService::Stub> agents;
  std::unique_ptr<v1::UpdatesService::Stub> updates;

  static absl::StatusOr<Backends> Connect(const TlsMaterial& internal_tls);
};

// Sends edge authentication failures to auth for the audit trail, asynchronously and
// without waiting (safe on completion threads); failures to report are logged.
std::function<void(const std::string& reason, const Actor& actor)> AuthFailureReporter(
    v1::AuthService::Stub* auth);

// Client context for a backend call, with a bounded deadline.
std::unique_ptr<grpc::ClientContext> BackendContext(absl::Duration timeout = absl::Seconds(15));
// The same, made on behalf of `actor` (forwarded in metadata, see common/actor.h).
std::unique_ptr<grpc::ClientContext> BackendContext(const Actor& actor,
                                                    absl::Duration timeout = absl::Seconds(15));

}  // namespace redflag::gateway

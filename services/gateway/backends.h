// The gateway's mTLS client stubs for the internal services (one channel each,
// shared by all calls; gRPC multiplexes). Addresses from REDFLAG_AUTH_ADDR,
// REDFLAG_AGENTS_ADDR, REDFLAG_UPDATES_ADDR.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/actor.h"
#include "common/tls.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "redflag/v1/auth.grpc.pb.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "services/gateway/backend_gate.h"

namespace redflag::gateway {

// Limits on the gateway's own concurrent calls per backend (BackendGate). Sized so that two
// gateway replicas stay inside one service's thread pool (ServerOptions::max_threads, 128):
// 2 x (24 + 16) calls and a Watch stream each. More replicas need lower limits here.
struct GateLimits {
  size_t max_in_flight = 24;   // unary calls per backend (REDFLAG_BACKEND_MAX_IN_FLIGHT)
  size_t max_downloads = 16;   // relayed downloads (REDFLAG_BACKEND_MAX_DOWNLOADS)
  size_t max_queued = 50'000;  // waiting calls per backend before refusing
  static absl::StatusOr<GateLimits> FromEnv();
};

struct Backends {
  std::unique_ptr<v1::AuthService::Stub> auth;
  std::unique_ptr<v1::AgentsService::Stub> agents;
  std::unique_ptr<v1::UpdatesService::Stub> updates;
  // Agent-driven calls, per service.
  std::unique_ptr<BackendGate> auth_gate;
  std::unique_ptr<BackendGate> agents_gate;
  std::unique_ptr<BackendGate> updates_gate;
  std::unique_ptr<BackendGate> download_gate;
  // Operators' calls, to any service: few, but bounded and counted like the rest.
  std::unique_ptr<BackendGate> operator_gate;
  // Every gate, for shutdown.
  std::vector<BackendGate*> gates() const;

  static absl::StatusOr<Backends> Connect(const TlsMaterial& internal_tls,
                                          const GateLimits& limits = GateLimits());
};

// The completion a gated call's issuer hands to gRPC.
using Completion = std::function<void(grpc::Status)>;

// Runs one unary backend call through `gate`: `issue(cb)` starts the call with `cb` as its
// completion; `done` runs exactly once (before the slot is released) with the call's status
// or RESOURCE_EXHAUSTED when the gate's queue was full.
void GatedCall(BackendGate& gate, std::function<void(Completion)> issue,
               std::function<void(const grpc::Status&)> done);

// Sends edge authentication failures to auth for the audit trail, asynchronously and
// without waiting (safe on completion threads), through the auth gate; failures to report
// are logged.
std::function<void(const std::string& reason, const Actor& actor)> AuthFailureReporter(
    Backends& backends);

// Client context for a backend call, with a bounded deadline.
std::unique_ptr<grpc::ClientContext> BackendContext(absl::Duration timeout = absl::Seconds(15));
// The same, made on behalf of `actor` (forwarded in metadata, see common/actor.h).
std::unique_ptr<grpc::ClientContext> BackendContext(const Actor& actor,
                                                    absl::Duration timeout = absl::Seconds(15));

}  // namespace redflag::gateway

// Who an internal call is on behalf of. The gateway authenticates the operator or agent
// and forwards the identity in metadata; internal services trust it only after
// PeerPolicy has verified the caller is the gateway's certificate.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

namespace redflag {

inline constexpr char kActorKey[] = "x-redflag-actor";
inline constexpr char kRoleKey[] = "x-redflag-role";
inline constexpr char kSourceKey[] = "x-redflag-source";

struct Actor {
  std::string subject;
  std::string role;
  std::string source;
};

Actor ActorFromMetadata(const grpc::ServerContextBase& ctx);
// The address part of a gRPC peer string: "ipv4:10.0.0.1:5555" -> "10.0.0.1",
// "ipv6:%5B::1%5D:5555" (gRPC's escaped form) or "ipv6:[::1]:5555" -> "::1". Unknown
// forms are returned unchanged. Every per-source limit is keyed by this: it must not
// include the port, or each new connection would be a new source.
std::string SourceIp(const std::string& peer);
void AttachActor(grpc::ClientContext& ctx, const Actor& actor);

}  // namespace redflag

#include "common/actor.h"

#include "absl/strings/str_replace.h"

namespace redflag {
namespace {

std::string Get(const grpc::ServerContextBase& ctx, const char* key) {
  auto it = ctx.client_metadata().find(key);
  return it == ctx.client_metadata().end() ? std::string()
                                           : std::string(it->second.data(), it->second.size());
}

}  // namespace

Actor ActorFromMetadata(const grpc::ServerContextBase& ctx) {
  return Actor{Get(ctx, kActorKey), Get(ctx, kRoleKey), Get(ctx, kSourceKey)};
}

std::string SourceIp(const std::string& peer) {
  if (peer.rfind("ipv4:", 0) == 0) {
    std::string rest = peer.substr(5);
    return rest.substr(0, rest.rfind(':'));
  }
  if (peer.rfind("ipv6:", 0) == 0) {
    // gRPC writes the address URI-escaped ("ipv6:%5B::1%5D:443"); older forms use brackets.
    std::string rest = absl::StrReplaceAll(
        peer.substr(5), {{"%5B", "["}, {"%5D", "]"}, {"%5b", "["}, {"%5d", "]"}});
    size_t close = rest.find(']');
    if (!rest.empty() && rest[0] == '[' && close != std::string::npos) {
      return rest.substr(1, close - 1);
    }
    return rest.substr(0, rest.rfind(':'));  // no brackets: still drop the port
  }
  return peer;
}

void AttachActor(grpc::ClientContext& ctx, const Actor& actor) {
  ctx.AddMetadata(kActorKey, actor.subject);
  ctx.AddMetadata(kRoleKey, actor.role);
  ctx.AddMetadata(kSourceKey, actor.source);
}

}  // namespace redflag

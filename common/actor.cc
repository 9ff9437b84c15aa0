#include "common/actor.h"

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
  std::string rest = peer;
  if (rest.rfind("ipv4:", 0) == 0) {
    rest = rest.substr(5);
    return rest.substr(0, rest.rfind(':'));
  }
  if (rest.rfind("ipv6:", 0) == 0) {
    rest = rest.substr(5);
    size_t close = rest.find(']');
    if (!rest.empty() && rest[0] == '[' && close != std::string::npos)
      return rest.substr(1, close - 1);
  }
  return peer;
}

void AttachActor(grpc::ClientContext& ctx, const Actor& actor) {
  ctx.AddMetadata(kActorKey, actor.subject);
  ctx.AddMetadata(kRoleKey, actor.role);
  ctx.AddMetadata(kSourceKey, actor.source);
}

}  // namespace redflag

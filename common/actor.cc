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

void AttachActor(grpc::ClientContext& ctx, const Actor& actor) {
  ctx.AddMetadata(kActorKey, actor.subject);
  ctx.AddMetadata(kRoleKey, actor.role);
  ctx.AddMetadata(kSourceKey, actor.source);
}

}  // namespace redflag

// The updates service's gRPC surface. This stage serves the key ring and signs
// server→agent instructions with the primary key and a fresh nonce; package
// publication, deliveries and downloads are answered UNIMPLEMENTED until they land.
#pragma once

#include "common/tls.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "services/updates/key_ring.h"

namespace redflag::updates {

inline constexpr char kInstructionType[] = "redflag.v1.Instruction";

class UpdatesServiceImpl final : public v1::UpdatesService::Service {
 public:
  explicit UpdatesServiceImpl(KeyRing& keys) : keys_(keys) {}

  grpc::Status ListSigningKeys(grpc::ServerContext* ctx, const v1::ListSigningKeysRequest* req,
                               v1::ListSigningKeysResponse* resp) override;
  grpc::Status SignInstruction(grpc::ServerContext* ctx, const v1::SignInstructionRequest* req,
                               v1::SignedEnvelope* resp) override;

 private:
  KeyRing& keys_;
  PeerPolicy gateway_only_{"gateway"};
};

}  // namespace redflag::updates

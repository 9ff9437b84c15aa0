#include "services/updates/service.h"

#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/status.h"

namespace redflag::updates {

grpc::Status UpdatesServiceImpl::ListSigningKeys(grpc::ServerContext* ctx,
                                                 const v1::ListSigningKeysRequest*,
                                                 v1::ListSigningKeysResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<std::vector<v1::SigningKey>> keys = keys_.VerifyingKeys();
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  for (auto& k : *keys) *resp->add_keys() = std::move(k);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::SignInstruction(grpc::ServerContext* ctx,
                                                 const v1::SignInstructionRequest* req,
                                                 v1::SignedEnvelope* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  const v1::Instruction& in = req->instruction();
  if (in.agent_id().empty() || in.body_case() == v1::Instruction::BODY_NOT_SET) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "an instruction needs an agent_id and a body");
  }
  // The service, not the caller, chooses nonce and time: they are the replay guard.
  v1::Instruction signed_in = in;
  if (signed_in.instruction_id().empty()) signed_in.set_instruction_id(RandomUuid());
  signed_in.set_nonce(RandomUuid());
  signed_in.mutable_issued_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  std::string payload;
  signed_in.SerializeToString(&payload);
  *resp = SignEnvelope(keys_.primary(), kInstructionType, std::move(payload));
  return grpc::Status::OK;
}

}  // namespace redflag::updates

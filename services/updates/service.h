// The updates service's gRPC surface (sync API on a bounded pool): publication with
// rollback protection and signed manifests, revocation, deliveries and rollout status,
// downloads, and signing of every server→agent instruction with a fresh nonce. Only the
// gateway may call it.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/event_hub.h"
#include "common/security_events.h"
#include "common/security_settings.h"
#include "common/tls.h"
#include "redflag/v1/updates.grpc.pb.h"
#include "services/updates/chunk_cache.h"
#include "services/updates/key_ring.h"
#include "services/updates/rollouts.h"
#include "services/updates/store.h"

namespace redflag::updates {

inline constexpr char kInstructionType[] = "redflag.v1.Instruction";
inline constexpr char kManifestType[] = "redflag.v1.Manifest";

class UpdatesServiceImpl final : public v1::UpdatesService::Service {
 public:
  // `chunks` serves downloads (package bytes read once per replica); `settings` gives the
  // instruction freshness window signed into every instruction. Both outlive the service.
  UpdatesServiceImpl(KeyRing& keys, UpdateStore& store, RolloutStore& rollouts,
                     const SecurityEventWriter& events, prometheus::Registry& metrics,
                     EventHub& hub, int64_t max_package_bytes, ChunkCache& chunks,
                     const LiveSecuritySettings& settings);

  grpc::Status PublishUpdate(grpc::ServerContext* ctx,
                             grpc::ServerReader<v1::PublishUpdateChunk>* reader,
                             v1::Update* resp) override;
  grpc::Status ListUpdates(grpc::ServerContext* ctx, const v1::ListUpdatesRequest* req,
                           v1::ListUpdatesResponse* resp) override;
  grpc::Status GetUpdate(grpc::ServerContext* ctx, const v1::GetUpdateRequest* req,
                         v1::Update* resp) override;
  grpc::Status RevokeUpdate(grpc::ServerContext* ctx, const v1::RevokeUpdateRequest* req,
                            v1::Update* resp) override;
  grpc::Status ListSigningKeys(grpc::ServerContext* ctx, const v1::ListSigningKeysRequest* req,
                               v1::ListSigningKeysResponse* resp) override;
  grpc::Status RevokeSigningKey(grpc::ServerContext* ctx, const v1::RevokeSigningKeyRequest* req,
                                v1::SigningKey* resp) override;
  grpc::Status ListDeliveries(grpc::ServerContext* ctx, const v1::ListDeliveriesRequest* req,
                              v1::ListDeliveriesResponse* resp) override;
  grpc::Status ReportDelivery(grpc::ServerContext* ctx, const v1::ReportDeliveryRequest* req,
                              v1::Delivery* resp) override;
  grpc::Status SignInstruction(grpc::ServerContext* ctx, const v1::SignInstructionRequest* req,
                               v1::SignedEnvelope* resp) override;
  grpc::Status PendingInstructions(grpc::ServerContext* ctx,
                                   const v1::PendingInstructionsRequest* req,
                                   v1::PendingInstructionsResponse* resp) override;
  grpc::Status PendingInstructionsBatch(grpc::ServerContext* ctx,
                                        const v1::PendingInstructionsBatchRequest* req,
                                        v1::PendingInstructionsBatchResponse* resp) override;
  grpc::Status AckInstruction(grpc::ServerContext* ctx, const v1::UpdateInstructionAck* req,
                              v1::Empty* resp) override;
  grpc::Status Download(grpc::ServerContext* ctx, const v1::DownloadRequest* req,
                        grpc::ServerWriter<v1::DownloadChunk>* writer) override;
  grpc::Status GetRollout(grpc::ServerContext* ctx, const v1::GetRolloutRequest* req,
                          v1::Rollout* resp) override;
  grpc::Status PauseRollout(grpc::ServerContext* ctx, const v1::RolloutActionRequest* req,
                            v1::Rollout* resp) override;
  grpc::Status ResumeRollout(grpc::ServerContext* ctx, const v1::RolloutActionRequest* req,
                             v1::Rollout* resp) override;
  grpc::Status AbortRollout(grpc::ServerContext* ctx, const v1::RolloutActionRequest* req,
                            v1::Rollout* resp) override;
  grpc::Status ApproveRolloutStage(grpc::ServerContext* ctx, const v1::RolloutActionRequest* req,
                                   v1::Rollout* resp) override;
  grpc::Status PauseAllRollouts(grpc::ServerContext* ctx, const v1::EmergencyStopRequest* req,
                                v1::EmergencyStopResponse* resp) override;
  grpc::Status ResumeAllRollouts(grpc::ServerContext* ctx, const v1::EmergencyStopRequest* req,
                                 v1::EmergencyStopResponse* resp) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchUpdatesRequest* req,
                     grpc::ServerWriter<v1::UpdateEvent>* writer) override;

 private:
  // Signs with the primary key after setting a fresh nonce and issued-at.
  v1::SignedEnvelope SignFresh(v1::Instruction in) const;
  // Each agent's owed instructions, signed for it, in the request's order: revoked keys it
  // still pins, endorsed keys it lacks, revocations owed, then offers. The key ring is read
  // once; the store's statements are per batch (per platform and channel), not per agent.
  absl::Status InstructionsFor(
      const google::protobuf::RepeatedPtrField<v1::PendingInstructionsRequest>& agents,
      v1::PendingInstructionsBatchResponse* out);
  // What a delivery's newly recorded state counts (redflag_delivery_reports_total by state)
  // and, for FAILED, audits (UPDATE_VERIFICATION_FAILED): once per change, whether a report
  // or an offer's ack recorded it.
  void CountOutcome(const grpc::ServerContext& ctx, const v1::Delivery& d,
                    const std::string& failure_code, const std::string& failure_reason);
  grpc::Status ApplyRollout(grpc::ServerContext& ctx, const v1::RolloutActionRequest& req,
                            RolloutAction action, v1::Rollout* resp);
  absl::StatusOr<v1::Update> ReceivePackage(grpc::ServerContext& ctx,
                                            grpc::ServerReader<v1::PublishUpdateChunk>& reader);

  KeyRing& keys_;
  UpdateStore& store_;
  RolloutStore& rollouts_;
  ChunkCache& chunks_;
  const SecurityEventWriter& events_;
  EventHub& hub_;
  const LiveSecuritySettings& settings_;
  const int64_t max_package_bytes_;
  prometheus::Family<prometheus::Counter>& failures_;
  prometheus::Family<prometheus::Counter>& reports_;
  prometheus::Counter& published_;
  prometheus::Family<prometheus::Counter>& pending_calls_;
  PeerPolicy gateway_only_{"gateway"};
};

}  // namespace redflag::updates

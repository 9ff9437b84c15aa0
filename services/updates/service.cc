#include "services/updates/service.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/actor.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/pg.h"
#include "common/status.h"
#include "common/validate.h"
#include "common/version.h"
#include "services/updates/validation.h"

namespace redflag::updates {
namespace {

constexpr char kOfferPrefix[] = "upd-offer-";
constexpr char kRevokePrefix[] = "upd-revoke-";
constexpr char kKeyPrefix[] = "upd-key-";
constexpr char kKeyRevokePrefix[] = "upd-keyrev-";

}  // namespace

UpdatesServiceImpl::UpdatesServiceImpl(KeyRing& keys, UpdateStore& store, RolloutStore& rollouts,
                                       const SecurityEventWriter& events,
                                       prometheus::Registry& metrics, EventHub& hub,
                                       int64_t max_package_bytes, ChunkCache& chunks,
                                       const LiveSecuritySettings& settings)
    : keys_(keys),
      store_(store),
      rollouts_(rollouts),
      chunks_(chunks),
      events_(events),
      hub_(hub),
      settings_(settings),
      max_package_bytes_(max_package_bytes),
      failures_(prometheus::BuildCounter()
                    .Name("redflag_update_failures_total")
                    .Help("Update deliveries that failed on the agent, by reason")
                    .Register(metrics)),
      reports_(prometheus::BuildCounter()
                   .Name("redflag_update_delivery_reports_total")
                   .Help("Delivery progress reports from agents, by state")
                   .Register(metrics)),
      published_(prometheus::BuildCounter()
                     .Name("redflag_updates_published_total")
                     .Help("Updates published")
                     .Register(metrics)
                     .Add({})),
      pending_calls_(prometheus::BuildCounter()
                         .Name("redflag_updates_pending_instruction_calls_total")
                         .Help("PendingInstructions calls by kind: single (one agent, at "
                               "connect) or batch (a gateway's fan-out of an event)")
                         .Register(metrics)) {}

v1::SignedEnvelope UpdatesServiceImpl::SignFresh(v1::Instruction in) const {
  if (in.instruction_id().empty()) in.set_instruction_id(RandomUuid());
  // The service, not the caller, chooses nonce and time: they are the replay guard.
  in.set_nonce(RandomUuid());
  in.mutable_issued_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
  in.set_valid_for_seconds(settings_.Get()->instruction_freshness_seconds());
  return SignEnvelope(keys_.primary(), kInstructionType, in.SerializeAsString());
}

absl::StatusOr<v1::Update> UpdatesServiceImpl::ReceivePackage(
    grpc::ServerContext& ctx, grpc::ServerReader<v1::PublishUpdateChunk>& reader) {
  v1::PublishUpdateChunk first;
  if (!reader.Read(&first) || !first.has_header()) {
    return absl::InvalidArgumentError("the first message must carry the header");
  }
  v1::PublishUpdateChunk::Header h = first.header();
  if (h.channel().empty()) h.set_channel("stable");
  REDFLAG_RETURN_IF_ERROR(ValidatePublishHeader(h, max_package_bytes_));
  REDFLAG_RETURN_IF_ERROR(store_.CheckVersionRises(h));  // fail before the upload
  Actor actor = ActorFromMetadata(ctx);
  Sha256Hasher hasher;
  int64_t received = 0;
  return store_.Publish(
      h, actor.subject,
      [&](PackageUpload& upload) -> absl::Status {
        v1::PublishUpdateChunk chunk;
        while (reader.Read(&chunk)) {
          if (!chunk.has_data()) {
            return absl::InvalidArgumentError("only the first message may carry a header");
          }
          received += static_cast<int64_t>(chunk.data().size());
          if (received > h.size()) {
            return absl::InvalidArgumentError(
                absl::StrCat("more bytes than the declared size ", h.size()));
          }
          hasher.Update(chunk.data());
          REDFLAG_RETURN_IF_ERROR(upload.Append(chunk.data()));
        }
        if (received != h.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat("received ", received, " bytes, declared size is ", h.size()));
        }
        return absl::OkStatus();
      },
      [&](const std::string& update_id) -> absl::StatusOr<v1::Update> {
        v1::Update u;
        v1::Manifest* m = u.mutable_manifest();
        m->set_update_id(update_id);
        m->set_name(h.name());
        m->set_version(h.version());
        m->set_platform(h.platform());
        m->set_channel(h.channel());
        m->set_kind(h.kind());
        m->set_size(h.size());
        m->set_sha256(hasher.FinishHex());
        m->mutable_created_at()->set_seconds(absl::ToUnixSeconds(absl::Now()));
        m->set_key_id(keys_.primary().KeyId());
        // The exact serialized bytes are signed, under the manifest's own type.
        *u.mutable_signed_manifest() =
            SignEnvelope(keys_.primary(), kManifestType, m->SerializeAsString());
        u.set_published_by(actor.subject);
        return u;
      },
      [&](PgConnection& c, const std::string& update_id) -> absl::Status {
        if (!h.has_rollout()) return absl::OkStatus();
        return rollouts_.Create(c, update_id, h.rollout(), actor);
      });
}

grpc::Status UpdatesServiceImpl::PublishUpdate(grpc::ServerContext* ctx,
                                               grpc::ServerReader<v1::PublishUpdateChunk>* reader,
                                               v1::Update* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<v1::Update> u = ReceivePackage(*ctx, *reader);
  if (!u.ok()) return ToGrpcStatus(u.status());
  published_.Increment();
  Actor actor = ActorFromMetadata(*ctx);
  (void)events_.Record({"UPDATE_PUBLISHED", actor.subject, actor.source,
                        absl::StrCat("{\"update\":", JsonQuote(u->manifest().update_id()),
                                     ",\"name\":", JsonQuote(u->manifest().name()),
                                     ",\"version\":", JsonQuote(u->manifest().version()),
                                     ",\"sha256\":", JsonQuote(u->manifest().sha256()), "}")});
  LogInfo(absl::StrCat("published ", u->manifest().name(), " ", u->manifest().version(), " (",
                       u->manifest().size(), " bytes)"));
  *resp = *std::move(u);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ListUpdates(grpc::ServerContext* ctx,
                                             const v1::ListUpdatesRequest* req,
                                             v1::ListUpdatesResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  absl::StatusOr<TimeIdCursor> after = ParseTimeIdToken("updates", req->page_token());
  if (!after.ok()) return ToGrpcStatus(after.status());
  // One more than asked: whether another page follows, without an empty last page.
  absl::StatusOr<UpdateStore::UpdatePage> page = store_.List(*req, *after, *size + 1);
  if (!page.ok()) return ToGrpcStatus(page.status());
  resp->set_next_page_token(TrimToPage("updates", *size, page->updates, page->keys));
  for (auto& u : page->updates) *resp->add_updates() = std::move(u);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::GetUpdate(grpc::ServerContext* ctx,
                                           const v1::GetUpdateRequest* req, v1::Update* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<v1::Update> u = store_.Get(req->update_id());
  if (!u.ok()) return ToGrpcStatus(u.status());
  *resp = *std::move(u);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::RevokeUpdate(grpc::ServerContext* ctx,
                                              const v1::RevokeUpdateRequest* req,
                                              v1::Update* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->reason().empty() || req->reason().size() > 500) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a reason of at most 500 characters is required to revoke");
  }
  absl::StatusOr<v1::Update> u = store_.Revoke(req->update_id(), req->reason());
  if (!u.ok()) return ToGrpcStatus(u.status());
  Actor actor = ActorFromMetadata(*ctx);
  (void)events_.Record({"UPDATE_REVOKED", actor.subject, actor.source,
                        absl::StrCat("{\"update\":", JsonQuote(req->update_id()),
                                     ",\"reason\":", JsonQuote(req->reason()), "}")});
  *resp = *std::move(u);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ListSigningKeys(grpc::ServerContext* ctx,
                                                 const v1::ListSigningKeysRequest*,
                                                 v1::ListSigningKeysResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<std::vector<v1::SigningKey>> keys = keys_.VerifyingKeys();
  if (!keys.ok()) return ToGrpcStatus(keys.status());
  for (auto& k : *keys) *resp->add_keys() = std::move(k);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::RevokeSigningKey(grpc::ServerContext* ctx,
                                                  const v1::RevokeSigningKeyRequest* req,
                                                  v1::SigningKey* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->key_id().empty() || req->key_id().size() > 64) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "key_id is required");
  }
  if (req->reason().empty() || req->reason().size() > 500) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a reason of at most 500 characters is required to revoke a key");
  }
  absl::StatusOr<v1::SigningKey> k = keys_.Revoke(req->key_id(), req->reason(), kUpdatesChannel);
  if (!k.ok()) return ToGrpcStatus(k.status());
  Actor actor = ActorFromMetadata(*ctx);
  (void)events_.Record({"SIGNING_KEY_REVOKED", actor.subject, actor.source,
                        absl::StrCat("{\"key\":", JsonQuote(req->key_id()),
                                     ",\"reason\":", JsonQuote(req->reason()), "}")});
  *resp = *std::move(k);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ListDeliveries(grpc::ServerContext* ctx,
                                                const v1::ListDeliveriesRequest* req,
                                                v1::ListDeliveriesResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  if (!req->update_id().empty()) {
    if (absl::Status s = ValidateUuid("update_id", req->update_id()); !s.ok()) {
      return ToGrpcStatus(s);
    }
  }
  if (absl::Status s = ValidateText("agent_id", req->agent_id(), 128); !s.ok()) {
    return ToGrpcStatus(s);
  }
  std::string after;
  if (!req->page_token().empty()) {
    absl::StatusOr<std::vector<std::string>> key =
        ParsePageToken("deliveries", req->page_token(), 1);
    if (!key.ok() || !ValidateUuid("page_token", (*key)[0]).ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "page_token is not one this RPC returned");
    }
    after = (*key)[0];
  }
  // One more than asked: whether another page follows, without an empty last page.
  absl::StatusOr<UpdateStore::DeliveryPage> page = store_.Deliveries(*req, after, *size + 1);
  if (!page.ok()) return ToGrpcStatus(page.status());
  bool more = static_cast<int>(page->rows.size()) > *size;
  if (more) page->rows.pop_back();
  for (auto& d : page->rows) *resp->add_deliveries() = std::move(d);
  for (const auto& [state, n] : page->counts) (*resp->mutable_counts())[state] = n;
  if (more) {
    resp->set_next_page_token(MakePageToken("deliveries", {page->rows.back().delivery_id()}));
  }
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ReportDelivery(grpc::ServerContext* ctx,
                                                const v1::ReportDeliveryRequest* req,
                                                v1::Delivery* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<v1::ReportDeliveryRequest> report = NormalizeDeliveryReport(*req);
  if (!report.ok()) return ToGrpcStatus(report.status());
  absl::StatusOr<UpdateStore::Reported> reported = store_.Report(*report);
  if (!reported.ok()) return ToGrpcStatus(reported.status());
  *resp = reported->delivery;
  if (!reported->changed) return grpc::Status::OK;  // a retry: counted and logged once already
  CountOutcome(*ctx, *resp, report->failure_code(), report->failure_reason());
  return grpc::Status::OK;
}

void UpdatesServiceImpl::CountOutcome(const grpc::ServerContext& ctx, const v1::Delivery& d,
                                      const std::string& failure_code,
                                      const std::string& failure_reason) {
  reports_.Add({{"state", v1::DeliveryState_Name(d.state())}}).Increment();
  if (d.state() != v1::FAILED) return;
  // Bounded label values for redflag_update_failures_total (normalised by the caller).
  const std::string label = failure_code.empty() ? "other" : failure_code;
  failures_.Add({{"reason", label}}).Increment();
  (void)events_.Record(
      {"UPDATE_VERIFICATION_FAILED", d.agent_id(), ActorFromMetadata(ctx).source,
       absl::StrCat("{\"delivery\":", JsonQuote(d.delivery_id()),
                    ",\"update\":", JsonQuote(d.update_id()), ",\"code\":", JsonQuote(label),
                    ",\"reason\":", JsonQuote(TruncateUtf8(failure_reason, 300)), "}")});
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
  if (in.has_offer() || in.has_revocation() || in.has_key_announcement() ||
      in.has_key_revocation()) {
    // Those are this service's own, built from its records, never from a caller's bytes.
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "offers, revocations and key announcements are issued by this service");
  }
  *resp = SignFresh(in);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::PendingInstructions(grpc::ServerContext* ctx,
                                                     const v1::PendingInstructionsRequest* req,
                                                     v1::PendingInstructionsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  pending_calls_.Add({{"call", "single"}}).Increment();
  google::protobuf::RepeatedPtrField<v1::PendingInstructionsRequest> one;
  *one.Add() = *req;
  v1::PendingInstructionsBatchResponse out;
  if (absl::Status s = InstructionsFor(one, &out); !s.ok()) return ToGrpcStatus(s);
  resp->mutable_instructions()->Swap(out.mutable_agents(0)->mutable_instructions());
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::PendingInstructionsBatch(
    grpc::ServerContext* ctx, const v1::PendingInstructionsBatchRequest* req,
    v1::PendingInstructionsBatchResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->agents_size() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "at most 1000 agents per batch");
  }
  pending_calls_.Add({{"call", "batch"}}).Increment();
  return ToGrpcStatus(InstructionsFor(req->agents(), resp));
}

absl::Status UpdatesServiceImpl::InstructionsFor(
    const google::protobuf::RepeatedPtrField<v1::PendingInstructionsRequest>& agents,
    v1::PendingInstructionsBatchResponse* out) {
  REDFLAG_ASSIGN_OR_RETURN(std::vector<v1::SigningKey> keys, keys_.VerifyingAndRevokedKeys());
  std::vector<std::string> ids;
  // Offers depend on the platform and channel: one store call per group.
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> groups;
  absl::flat_hash_set<std::string> seen;  // an agent asked about twice is looked up once
  for (const auto& a : agents) {
    REDFLAG_RETURN_IF_ERROR(ValidateText("agent_id", a.agent_id(), 128, /*allow_empty=*/false));
    if (!seen.insert(a.agent_id()).second) continue;
    ids.push_back(a.agent_id());
    groups[{a.platform(), a.channel().empty() ? "stable" : a.channel()}].push_back(a.agent_id());
  }
  REDFLAG_ASSIGN_OR_RETURN(auto revocations, store_.RevocationsOwed(ids));
  std::map<std::string, std::vector<OfferCandidate>> offers;
  for (const auto& [group, members] : groups) {
    REDFLAG_ASSIGN_OR_RETURN(auto found, store_.Offers(members, group.first, group.second));
    for (auto& [agent, list] : found) offers[agent] = std::move(list);
  }
  absl::flat_hash_set<std::string> revoked;
  for (const auto& k : keys) {
    if (k.state() == v1::SigningKey::REVOKED) revoked.insert(k.key_id());
  }
  for (const auto& req : agents) {
    v1::AgentInstructions* result = out->add_agents();
    result->set_agent_id(req.agent_id());
    auto add = [&](v1::Instruction in) {
      in.set_agent_id(req.agent_id());
      *result->add_instructions() = SignFresh(std::move(in));
    };
    auto pins = [&](const std::string& key_id) {
      for (const auto& id : req.pinned_key_ids()) {
        if (id == key_id) return true;
      }
      return false;
    };
    // Revoked keys the agent still pins, first: nothing after them may lean on such a key.
    for (const auto& k : keys) {
      if (k.state() != v1::SigningKey::REVOKED || !pins(k.key_id())) continue;
      v1::Instruction in;
      in.set_instruction_id(kKeyRevokePrefix + k.key_id());
      in.mutable_key_revocation()->set_key_id(k.key_id());
      in.mutable_key_revocation()->set_reason("signing key revoked by an administrator");
      add(std::move(in));
    }
    // Then endorsed keys the agent has not pinned yet: later offers may be signed by them.
    for (const auto& k : keys) {
      if (k.state() == v1::SigningKey::REVOKED || !k.has_endorsement() || pins(k.key_id())) {
        continue;
      }
      v1::Instruction in;
      in.set_instruction_id(kKeyPrefix + k.key_id());
      v1::KeyAnnouncement* a = in.mutable_key_announcement();
      a->mutable_key()->set_key_id(k.key_id());
      a->mutable_key()->set_public_key(k.public_key());
      *a->mutable_endorsement() = k.endorsement();
      add(std::move(in));
    }
    for (const auto& d : revocations[req.agent_id()]) {
      v1::Instruction in;
      in.set_instruction_id(kRevokePrefix + d.delivery_id());
      in.mutable_revocation()->set_update_id(d.update_id());
      in.mutable_revocation()->set_reason(d.failure_reason());
      add(std::move(in));
    }
    absl::StatusOr<Version> agent_version = Version::Parse(req.version());
    for (const auto& o : offers[req.agent_id()]) {
      // A manifest signed by a revoked key would only be refused: republish it instead.
      if (revoked.contains(o.update.signed_manifest().key_id())) continue;
      if (o.update.manifest().kind() == v1::AGENT) {
        absl::StatusOr<Version> v = Version::Parse(o.update.manifest().version());
        // A self-update is only an update if it raises the agent's version.
        if (!v.ok() || !agent_version.ok() || v->Compare(*agent_version) <= 0) continue;
      }
      v1::Instruction in;
      in.set_instruction_id(kOfferPrefix + o.delivery_id);
      in.mutable_offer()->set_delivery_id(o.delivery_id);
      *in.mutable_offer()->mutable_signed_manifest() = o.update.signed_manifest();
      add(std::move(in));
    }
  }
  return absl::OkStatus();
}

grpc::Status UpdatesServiceImpl::AckInstruction(grpc::ServerContext* ctx,
                                                const v1::UpdateInstructionAck* req, v1::Empty*) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  const std::string& id = req->instruction_id();
  absl::Status s;
  if (absl::StartsWith(id, kOfferPrefix)) {
    const std::string error = StorableText(req->error(), 500);
    absl::StatusOr<UpdateStore::AckedOffer> acked = store_.AckOffer(
        req->agent_id(), id.substr(sizeof(kOfferPrefix) - 1), req->applied(), error);
    s = acked.status();
    // The report it ended with was lost on the way (e.g. with a gateway): the ack recorded
    // the outcome instead, counted and audited as the report would have been.
    if (acked.ok() && acked->closed) CountOutcome(*ctx, acked->delivery, "unreported", error);
  } else if (absl::StartsWith(id, kRevokePrefix)) {
    s = store_.AckRevocation(req->agent_id(), id.substr(sizeof(kRevokePrefix) - 1));
  } else if (absl::StartsWith(id, kKeyPrefix) || absl::StartsWith(id, kKeyRevokePrefix)) {
    s = absl::OkStatus();  // key changes are stateless: the agent's hello says what it pinned
  } else {
    s = absl::InvalidArgumentError("not an update instruction id");
  }
  return ToGrpcStatus(s);
}

grpc::Status UpdatesServiceImpl::Download(grpc::ServerContext* ctx, const v1::DownloadRequest* req,
                                          grpc::ServerWriter<v1::DownloadChunk>* writer) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (absl::Status s = ValidateUuid("update_id", req->update_id()); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<int64_t> size = store_.DownloadSize(req->agent_id(), req->update_id());
  if (!size.ok()) return ToGrpcStatus(size.status());
  int64_t offset = req->offset();
  if (offset < 0 || offset > *size) {
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                        absl::StrCat("offset ", offset, " is outside 0..", *size));
  }
  if (offset == *size) {
    v1::DownloadChunk c;
    c.set_offset(offset);
    c.set_last(true);
    writer->Write(c);
    return grpc::Status::OK;
  }
  const auto chunk_bytes = static_cast<int64_t>(kChunkBytes);
  const int64_t last_seq = (*size - 1) / chunk_bytes;
  for (int64_t seq = offset / chunk_bytes; seq <= last_seq; ++seq) {
    // From memory, or read once for every download of this package on this replica; no
    // database connection is held while the gateway (and the agent behind it) takes the bytes.
    absl::StatusOr<std::shared_ptr<const std::string>> chunk = chunks_.Get(req->update_id(), seq);
    if (!chunk.ok()) return ToGrpcStatus(chunk.status());
    absl::string_view data(**chunk);
    data.remove_prefix(std::min(data.size(), static_cast<size_t>(offset - seq * chunk_bytes)));
    v1::DownloadChunk c;
    c.set_offset(offset);
    c.set_data(std::string(data));
    c.set_last(seq == last_seq);
    offset += static_cast<int64_t>(data.size());
    // Write() blocks until the gateway takes the chunk: back-pressure.
    if (ctx->IsCancelled() || !writer->Write(c)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "reader went away");
    }
  }
  return grpc::Status::OK;
}

namespace {

// An operator's reason for a rollout action: required unless `optional`, at most 500 bytes,
// no control characters (it is audited and shown to agents on an abort).
absl::Status ValidateReason(const std::string& reason, bool optional) {
  return ValidateText("reason", reason, 500, /*allow_empty=*/optional);
}

}  // namespace

grpc::Status UpdatesServiceImpl::GetRollout(grpc::ServerContext* ctx,
                                            const v1::GetRolloutRequest* req, v1::Rollout* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<v1::Rollout> r = rollouts_.Get(req->update_id());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ApplyRollout(grpc::ServerContext& ctx,
                                              const v1::RolloutActionRequest& req,
                                              RolloutAction action, v1::Rollout* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, &ctx);
  if (absl::Status s = ValidateReason(req.reason(), action == RolloutAction::kApprove); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<v1::Rollout> r =
      rollouts_.Apply(req.update_id(), action, ActorFromMetadata(ctx), req.reason());
  if (!r.ok()) return ToGrpcStatus(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::PauseRollout(grpc::ServerContext* ctx,
                                              const v1::RolloutActionRequest* req,
                                              v1::Rollout* resp) {
  return ApplyRollout(*ctx, *req, RolloutAction::kPause, resp);
}

grpc::Status UpdatesServiceImpl::ResumeRollout(grpc::ServerContext* ctx,
                                               const v1::RolloutActionRequest* req,
                                               v1::Rollout* resp) {
  return ApplyRollout(*ctx, *req, RolloutAction::kResume, resp);
}

grpc::Status UpdatesServiceImpl::AbortRollout(grpc::ServerContext* ctx,
                                              const v1::RolloutActionRequest* req,
                                              v1::Rollout* resp) {
  return ApplyRollout(*ctx, *req, RolloutAction::kAbort, resp);
}

grpc::Status UpdatesServiceImpl::ApproveRolloutStage(grpc::ServerContext* ctx,
                                                     const v1::RolloutActionRequest* req,
                                                     v1::Rollout* resp) {
  return ApplyRollout(*ctx, *req, RolloutAction::kApprove, resp);
}

grpc::Status UpdatesServiceImpl::PauseAllRollouts(grpc::ServerContext* ctx,
                                                  const v1::EmergencyStopRequest* req,
                                                  v1::EmergencyStopResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (absl::Status s = ValidateReason(req->reason(), false); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<std::vector<std::string>> ids =
      rollouts_.PauseAll(ActorFromMetadata(*ctx), req->reason());
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  LogWarn(absl::StrCat("emergency stop: ", ids->size(), " rollouts paused"));
  for (std::string& id : *ids) resp->add_update_ids(std::move(id));
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::ResumeAllRollouts(grpc::ServerContext* ctx,
                                                   const v1::EmergencyStopRequest* req,
                                                   v1::EmergencyStopResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (absl::Status s = ValidateReason(req->reason(), false); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<std::vector<std::string>> ids =
      rollouts_.ResumeAll(ActorFromMetadata(*ctx), req->reason());
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  LogInfo(absl::StrCat("emergency stop lifted: ", ids->size(), " rollouts resumed"));
  for (std::string& id : *ids) resp->add_update_ids(std::move(id));
  return grpc::Status::OK;
}

grpc::Status UpdatesServiceImpl::Watch(grpc::ServerContext* ctx, const v1::WatchUpdatesRequest*,
                                       grpc::ServerWriter<v1::UpdateEvent>* writer) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  std::shared_ptr<EventHub::Subscription> sub = hub_.Subscribe();
  // First a gap: the gateway resyncs once the subscription is live (see the agents Watch).
  bool open = writer->Write(v1::UpdateEvent());
  while (open && !ctx->IsCancelled()) {
    std::optional<std::string> payload = sub->Next(absl::Milliseconds(500));
    if (!payload) continue;
    v1::UpdateEvent ev;
    size_t colon = payload->find(':');
    if (colon != std::string::npos) {
      std::string kind = payload->substr(0, colon);
      ev.set_kind(kind == "revoked"       ? v1::UpdateEvent::REVOKED
                  : kind == "key_revoked" ? v1::UpdateEvent::KEY_REVOKED
                  : kind == "key_rotated" ? v1::UpdateEvent::KEY_ROTATED
                                          : v1::UpdateEvent::PUBLISHED);
      ev.set_update_id(payload->substr(colon + 1));
    }  // else a gap: KIND_UNSPECIFIED asks the gateway to resynchronise
    if (!writer->Write(ev)) break;
  }
  hub_.Unsubscribe(sub);
  return grpc::Status::OK;
}

}  // namespace redflag::updates

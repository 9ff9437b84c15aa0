#include "services/agents/service.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/actor.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/status.h"
#include "common/validate.h"

namespace redflag::agents {
namespace {

constexpr size_t kMaxBatch = 5000;

void SetMicros(google::protobuf::Timestamp* ts, int64_t us) {
  ts->set_seconds(us / 1000000);
  ts->set_nanos(static_cast<int32_t>(us % 1000000) * 1000);
}

}  // namespace

AgentsServiceImpl::AgentsServiceImpl(AgentStore& store, const SecurityEventWriter& events,
                                     prometheus::Registry& metrics, LiveSecuritySettings& settings,
                                     SecuritySettingsStore& settings_store, EventHub& hub)
    : store_(store),
      events_(events),
      binding_violations_(prometheus::BuildCounter()
                              .Name("redflag_machine_binding_violations_total")
                              .Help("Agent requests whose machine fingerprint did not match")
                              .Register(metrics)
                              .Add({})),
      check_ins_(prometheus::BuildCounter()
                     .Name("redflag_agent_check_ins_total")
                     .Help("Agent check-ins accepted")
                     .Register(metrics)
                     .Add({})),
      registrations_(prometheus::BuildCounter()
                         .Name("redflag_agent_registrations_total")
                         .Help("Agents registered")
                         .Register(metrics)
                         .Add({})),
      settings_(settings),
      settings_store_(settings_store),
      hub_(hub) {}

v1::Agent AgentsServiceImpl::ToProto(const AgentRow& row, const PolicySettings& policy) const {
  v1::Agent a;
  a.set_id(row.id);
  a.set_hostname(row.hostname);
  a.set_platform(row.platform);
  a.set_version(row.version);
  a.set_machine_id_prefix(row.machine_id.substr(0, 16));
  int64_t now_us = absl::ToUnixMicros(absl::Now());
  bool online = row.last_seen_at_us != 0 &&
                now_us - row.last_seen_at_us <= policy.offline_after_seconds * 1000000;
  a.set_status(row.blocked ? v1::BLOCKED : (online ? v1::ONLINE : v1::OFFLINE));
  std::vector<std::string> issues = ComplianceIssues(row, policy, now_us);
  a.set_compliant(issues.empty());
  for (auto& i : issues) a.add_compliance_issues(std::move(i));
  SetMicros(a.mutable_registered_at(), row.registered_at_us);
  if (row.last_seen_at_us != 0) SetMicros(a.mutable_last_seen_at(), row.last_seen_at_us);
  a.set_binding_violations(row.binding_violations);
  a.set_blocked_reason(row.blocked_reason);
  a.set_registration_token_id(row.registration_token_id);
  if (row.last_verified_at_us != 0)
    SetMicros(a.mutable_last_verified_at(), row.last_verified_at_us);
  a.set_verify_result(row.verify_result);
  for (absl::string_view k : absl::StrSplit(row.pinned_key_ids, ',', absl::SkipEmpty())) {
    a.add_pinned_key_ids(std::string(k));
  }
  return a;
}

absl::Status AgentsServiceImpl::Check(const AgentRow& agent, const std::string& machine_id,
                                      const std::string& version, const std::string& source,
                                      const PolicySettings& policy, std::string* new_highest) {
  Decision d = Evaluate(agent, machine_id, version, policy);
  if (d.refusal == Refusal::kBindingMismatch) {
    binding_violations_.Increment();
    auto mismatch = [&](int count) -> SecurityEventInput {
      return {"MACHINE_ID_MISMATCH", agent.id, source,
              absl::StrCat("{\"bound_prefix\":", JsonQuote(agent.machine_id.substr(0, 16)),
                           ",\"presented_prefix\":", JsonQuote(machine_id.substr(0, 16)),
                           ",\"violations\":", count, "}")};
    };
    // The count, the automatic block and their events commit together: nobody sees the agent
    // blocked with its last violation missing from the audit trail.
    absl::StatusOr<int> count = store_.RecordViolation(
        agent.id, policy.violations_before_block, [&](PgConnection& tx, int n) -> absl::Status {
          REDFLAG_RETURN_IF_ERROR(events_.Record(tx, mismatch(n)));
          if (n != policy.violations_before_block) return absl::OkStatus();
          return events_.Record(tx, {"AGENT_AUTO_BLOCKED", agent.id, source,
                                     absl::StrCat("{\"violations\":", n, "}")});
        });
    if (!count.ok()) {
      // Not counted (the database is away): the event still must not be lost; it waits in
      // the writer's queue for the database (violations -1: not counted).
      LogError(absl::StrCat("cannot count a binding violation of ", agent.id, ": ",
                            count.status().message()));
      if (absl::Status s = events_.Record(mismatch(-1)); !s.ok()) {
        LogError(absl::StrCat("cannot record MACHINE_ID_MISMATCH: ", s.message()));
      }
    }
  } else if (d.refusal == Refusal::kDowngrade) {
    absl::Status s =
        events_.Record({"VERSION_DOWNGRADE", agent.id, source,
                        absl::StrCat("{\"reported\":", JsonQuote(version),
                                     ",\"highest\":", JsonQuote(agent.highest_version), "}")});
    if (!s.ok()) LogError(absl::StrCat("cannot record VERSION_DOWNGRADE: ", s.message()));
  }
  *new_highest = d.new_highest_version;
  return d.status;
}

grpc::Status AgentsServiceImpl::RegisterAgent(grpc::ServerContext* ctx,
                                              const v1::RegisterAgentRequest* req,
                                              v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (absl::Status s = ValidateMachineId("machine_id", req->machine_id()); !s.ok())
    return ToGrpcStatus(s);
  absl::StatusOr<Version> v = Version::Parse(req->version());
  if (!v.ok()) return ToGrpcStatus(v.status());
  const PolicySettings policy = Policy();
  if (v->Compare(policy.min_version) < 0) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("agent version ", v->ToString(), " is below the minimum ",
                     policy.min_version.ToString(), " (min_agent_version); update the agent"));
  }
  if (absl::Status s = ValidateText("hostname", req->hostname(), 255); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (absl::Status s = ValidateText("platform", req->platform(), 64); !s.ok()) {
    return ToGrpcStatus(s);
  }
  absl::StatusOr<AgentRow> row = store_.Create({req->machine_id(), req->hostname(), req->platform(),
                                                v->ToString(), req->registration_token_id()});
  if (!row.ok()) {
    if (row.status().code() == absl::StatusCode::kAlreadyExists) {
      (void)events_.Record(
          {"DUPLICATE_MACHINE_REGISTRATION", req->hostname(), ActorFromMetadata(*ctx).source,
           absl::StrCat("{\"machine_prefix\":", JsonQuote(req->machine_id().substr(0, 16)), "}")});
    }
    return ToGrpcStatus(row.status());
  }
  registrations_.Increment();
  *resp = ToProto(*row);
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::AuthorizeAgent(grpc::ServerContext* ctx,
                                               const v1::AuthorizeAgentRequest* req,
                                               v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<std::optional<AgentRow>> row = store_.Get(req->agent_id());
  if (!row.ok()) return ToGrpcStatus(row.status());
  if (!row->has_value()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown agent");
  std::string highest;
  // No version (credential refresh): check the binding and block state, touch nothing else.
  const std::string& version = req->version().empty() ? (*row)->version : req->version();
  absl::Status s = Check(**row, req->machine_id(), version, req->source(), Policy(), &highest);
  if (!s.ok()) return ToGrpcStatus(s);
  if (req->version().empty()) {
    *resp = ToProto(**row);
    return grpc::Status::OK;
  }
  if (absl::Status w = store_.WriteCheckIns({{req->agent_id(), req->version(), highest}});
      !w.ok()) {
    return ToGrpcStatus(w);
  }
  (*row)->version = req->version();
  (*row)->last_seen_at_us = absl::ToUnixMicros(absl::Now());
  *resp = ToProto(**row);
  if (req->announce_stream()) {
    absl::StatusOr<int64_t> seq = store_.AnnounceStream(req->agent_id());
    if (!seq.ok()) return ToGrpcStatus(seq.status());
    resp->set_stream_seq(*seq);
  }
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::RecordCheckIns(grpc::ServerContext* ctx,
                                               const v1::RecordCheckInsRequest* req,
                                               v1::RecordCheckInsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (static_cast<size_t>(req->check_ins_size()) > kMaxBatch) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("at most ", kMaxBatch, " check-ins per batch"));
  }
  std::vector<std::string> ids;
  ids.reserve(req->check_ins_size());
  for (const auto& c : req->check_ins()) ids.push_back(c.agent_id());
  absl::StatusOr<std::vector<AgentRow>> rows = store_.GetMany(ids);
  if (!rows.ok()) return ToGrpcStatus(rows.status());
  absl::flat_hash_map<std::string, const AgentRow*> by_id;
  for (const auto& r : *rows) by_id[r.id] = &r;

  std::vector<CheckInWrite> writes;
  const PolicySettings policy = Policy();
  for (const auto& c : req->check_ins()) {
    v1::CheckInResult* out = resp->add_results();
    out->set_agent_id(c.agent_id());
    auto it = by_id.find(c.agent_id());
    absl::Status s;
    std::string highest;
    if (it == by_id.end()) {
      s = absl::UnauthenticatedError("unknown agent");
    } else {
      s = Check(*it->second, c.machine_id(), c.version(), c.source(), policy, &highest);
    }
    out->set_code(static_cast<int32_t>(s.code()));
    out->set_message(std::string(s.message()));
    if (s.ok()) writes.push_back({c.agent_id(), c.version(), highest});
  }
  if (absl::Status w = store_.WriteCheckIns(writes); !w.ok()) return ToGrpcStatus(w);
  check_ins_.Increment(static_cast<double>(writes.size()));
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::ListAgents(grpc::ServerContext* ctx,
                                           const v1::ListAgentsRequest* req,
                                           v1::ListAgentsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<int> size = PageSize(req->page_size());
  if (!size.ok()) return ToGrpcStatus(size.status());
  if (req->seen_within_seconds() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "seen_within_seconds must be >= 0");
  }
  absl::StatusOr<TimeIdCursor> after = ParseTimeIdToken("agents", req->page_token());
  if (!after.ok()) return ToGrpcStatus(after.status());
  // One more than asked: whether another page follows, without an empty last page.
  const PolicySettings policy = Policy();
  absl::StatusOr<AgentStore::Page> page = store_.List(*req, policy, *after, *size + 1);
  if (!page.ok()) return ToGrpcStatus(page.status());
  bool more = static_cast<int>(page->rows.size()) > *size;
  if (more) page->rows.pop_back();
  for (const auto& r : page->rows) *resp->add_agents() = ToProto(r, policy);
  resp->set_total_size(page->total);
  if (more) {
    const AgentRow& last = page->rows.back();
    resp->set_next_page_token(MakeTimeIdToken("agents", {last.registered_at_us, last.id}));
  }
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::GetAgent(grpc::ServerContext* ctx, const v1::GetAgentRequest* req,
                                         v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  return ReplyCurrent(req->id(), resp);
}

grpc::Status AgentsServiceImpl::BlockAgent(grpc::ServerContext* ctx,
                                           const v1::BlockAgentRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->reason().empty() || req->reason().size() > 500) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a reason of at most 500 characters is required to block");
  }
  absl::StatusOr<AgentRow> row = store_.SetBlocked(req->id(), true, req->reason());
  if (row.ok()) {
    RecordOperatorEvent(*ctx, "AGENT_BLOCKED", req->id(),
                        absl::StrCat(",\"reason\":", JsonQuote(req->reason())));
  }
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::UnblockAgent(grpc::ServerContext* ctx,
                                             const v1::UnblockAgentRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<AgentRow> row = store_.SetBlocked(req->id(), false, "");
  if (row.ok()) RecordOperatorEvent(*ctx, "AGENT_UNBLOCKED", req->id());
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::ResetAgentVersion(grpc::ServerContext* ctx,
                                                  const v1::ResetAgentVersionRequest* req,
                                                  v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->reason().empty() || req->reason().size() > 500) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "a reason of at most 500 characters is required");
  }
  absl::StatusOr<Version> v = Version::Parse(req->version());
  if (!v.ok()) return ToGrpcStatus(v.status());
  if (const Version min = Policy().min_version; v->Compare(min) < 0) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("version ", v->ToString(), " is below the minimum ", min.ToString()));
  }
  std::string previous;
  absl::StatusOr<AgentRow> row = store_.ResetVersion(req->id(), v->ToString(), &previous);
  if (row.ok()) {
    RecordOperatorEvent(
        *ctx, "AGENT_VERSION_RESET", req->id(),
        absl::StrCat(",\"from\":", JsonQuote(previous), ",\"to\":", JsonQuote(v->ToString()),
                     ",\"reason\":", JsonQuote(req->reason())));
  }
  return Reply(row, resp);
}

void AgentsServiceImpl::RecordOperatorEvent(const grpc::ServerContext& ctx, const std::string& type,
                                            const std::string& agent_id,
                                            const std::string& extra_json) {
  Actor actor = ActorFromMetadata(ctx);
  absl::Status s =
      events_.Record({type, actor.subject, actor.source,
                      absl::StrCat("{\"agent\":", JsonQuote(agent_id), extra_json, "}")});
  if (!s.ok()) LogError(absl::StrCat("cannot record ", type, ": ", s.message()));
}

grpc::Status AgentsServiceImpl::Reply(const absl::StatusOr<AgentRow>& row, v1::Agent* resp) const {
  if (!row.ok()) return ToGrpcStatus(row.status());
  *resp = ToProto(*row);
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::ReplyCurrent(const std::string& id, v1::Agent* resp) const {
  absl::StatusOr<std::optional<AgentRow>> row = store_.Get(id);
  if (!row.ok()) return ToGrpcStatus(row.status());
  if (!row->has_value()) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no agent ", id));
  }
  *resp = ToProto(**row);
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::WarnAgent(grpc::ServerContext* ctx, const v1::WarnAgentRequest* req,
                                          v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->message().empty() || req->message().size() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "message must be between 1 and 1000 characters");
  }
  v1::Instruction in;
  in.mutable_warning()->set_message(req->message());
  absl::StatusOr<AgentRow> row = store_.QueueInstruction(req->id(), std::move(in));
  if (row.ok()) RecordOperatorEvent(*ctx, "AGENT_WARNED", req->id());
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::VerifyAgent(grpc::ServerContext* ctx,
                                            const v1::VerifyAgentRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  v1::Instruction in;
  in.mutable_verify()->set_challenge(RandomUuid());
  absl::StatusOr<AgentRow> row = store_.QueueInstruction(req->id(), std::move(in));
  if (row.ok()) RecordOperatorEvent(*ctx, "AGENT_VERIFY_REQUESTED", req->id());
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::RebindAgent(grpc::ServerContext* ctx,
                                            const v1::RebindAgentRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (absl::Status s = ValidateMachineId("new_machine_id", req->new_machine_id()); !s.ok())
    return ToGrpcStatus(s);
  if (req->registration_token_id().empty()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "rebinding needs a registration seat consumed by the gateway");
  }
  absl::StatusOr<std::optional<AgentRow>> before = store_.Get(req->id());
  absl::StatusOr<AgentRow> row =
      store_.Rebind(req->id(), req->new_machine_id(), req->registration_token_id());
  if (row.ok()) {
    std::string old_prefix =
        before.ok() && before->has_value() ? (**before).machine_id.substr(0, 16) : "";
    RecordOperatorEvent(*ctx, "AGENT_REBOUND", req->id(),
                        absl::StrCat(",\"old_prefix\":", JsonQuote(old_prefix), ",\"new_prefix\":",
                                     JsonQuote(req->new_machine_id().substr(0, 16))));
  }
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::DeleteAgent(grpc::ServerContext* ctx,
                                            const v1::DeleteAgentRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<AgentRow> row = store_.Delete(req->id());
  if (row.ok()) RecordOperatorEvent(*ctx, "AGENT_DELETED", req->id());
  return Reply(row, resp);
}

grpc::Status AgentsServiceImpl::PendingInstructions(grpc::ServerContext* ctx,
                                                    const v1::AgentInstructionsRequest* req,
                                                    v1::AgentInstructionsResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<std::vector<v1::Instruction>> pending =
      store_.PendingInstructions(req->agent_id());
  if (!pending.ok()) return ToGrpcStatus(pending.status());
  for (auto& in : *pending) *resp->add_instructions() = std::move(in);
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::AgentsOwedInstructions(grpc::ServerContext* ctx,
                                                       const v1::AgentsOwedRequest* req,
                                                       v1::AgentsOwedResponse* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  if (req->agent_ids_size() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "at most 1000 agent_ids per call");
  }
  std::vector<std::string> ids;
  ids.reserve(static_cast<size_t>(req->agent_ids_size()));
  for (const auto& id : req->agent_ids()) {
    if (absl::Status s = ValidateUuid("agent_ids", id); !s.ok()) return ToGrpcStatus(s);
    ids.push_back(id);
  }
  absl::StatusOr<std::vector<std::string>> owed = store_.AgentsOwed(ids);
  if (!owed.ok()) return ToGrpcStatus(owed.status());
  for (auto& id : *owed) resp->add_agent_ids(std::move(id));
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::AckInstruction(grpc::ServerContext* ctx,
                                               const v1::AckInstructionRequest* req,
                                               v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::Status s =
      store_.AckInstruction(req->agent_id(), req->instruction_id(), req->applied(), req->error());
  if (!s.ok()) return ToGrpcStatus(s);
  if (!req->applied()) {
    (void)events_.Record(
        {"INSTRUCTION_REFUSED", req->agent_id(), ActorFromMetadata(*ctx).source,
         absl::StrCat("{\"instruction\":", JsonQuote(req->instruction_id()),
                      ",\"error\":", JsonQuote(TruncateUtf8(req->error(), 200)), "}")});
  }
  return ReplyCurrent(req->agent_id(), resp);
}

grpc::Status AgentsServiceImpl::RecordVerify(grpc::ServerContext* ctx,
                                             const v1::RecordVerifyRequest* req, v1::Agent* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<std::optional<AgentRow>> row = store_.Get(req->agent_id());
  if (!row.ok()) return ToGrpcStatus(row.status());
  if (!row->has_value()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown agent");
  bool match = ConstantTimeEquals(req->machine_id(), (*row)->machine_id);
  std::vector<std::string> keys(req->pinned_key_ids().begin(), req->pinned_key_ids().end());
  std::string result = match ? "ok" : "machine_id_mismatch";
  if (absl::Status s = store_.RecordVerify(req->agent_id(), result, keys); !s.ok()) {
    return ToGrpcStatus(s);
  }
  if (!match) {
    // The agent recomputed a different fingerprint: the same as a binding violation.
    std::string unused;
    (void)Check(**row, req->machine_id(), (*row)->version, req->source(), Policy(), &unused);
  }
  (void)store_.AckInstruction(req->agent_id(), req->instruction_id(), match,
                              match ? "" : "fingerprint mismatch");
  (void)events_.Record(
      {match ? "AGENT_VERIFIED" : "AGENT_VERIFY_FAILED", req->agent_id(), req->source(),
       absl::StrCat("{\"presented_prefix\":", JsonQuote(req->machine_id().substr(0, 16)), "}")});
  return ReplyCurrent(req->agent_id(), resp);
}

grpc::Status AgentsServiceImpl::Watch(grpc::ServerContext* ctx, const v1::WatchAgentsRequest*,
                                      grpc::ServerWriter<v1::AgentEvent>* writer) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  std::shared_ptr<EventHub::Subscription> sub = hub_.Subscribe();
  // First a gap: whatever happened before this subscription (while the gateway was away) is
  // made up by the gateway's resync, which starts only now that no later event can be lost.
  bool open = writer->Write(v1::AgentEvent());
  // One thread per gateway replica (a handful), woken by events or every 500 ms to notice
  // a departed gateway.
  while (open && !ctx->IsCancelled()) {
    std::optional<std::string> payload = sub->Next(absl::Milliseconds(500));
    if (!payload) continue;
    v1::AgentEvent ev;
    size_t colon = payload->find(':');
    if (colon != std::string::npos) {
      std::string kind = payload->substr(0, colon);
      ev.set_agent_id(payload->substr(colon + 1));
      ev.set_kind(kind == "blocked"     ? v1::AgentEvent::BLOCKED
                  : kind == "deleted"   ? v1::AgentEvent::DELETED
                  : kind == "connected" ? v1::AgentEvent::CONNECTED
                  : kind == "settings"  ? v1::AgentEvent::SETTINGS_CHANGED
                                        : v1::AgentEvent::INSTRUCTIONS_PENDING);
      if (ev.kind() == v1::AgentEvent::CONNECTED) {  // "connected:<agent>:<seq>"
        size_t second = ev.agent_id().find(':');
        if (second != std::string::npos) {
          ev.set_detail(ev.agent_id().substr(second + 1));
          ev.set_agent_id(ev.agent_id().substr(0, second));
        }
      }
    }  // else: a gap; KIND_UNSPECIFIED tells the gateway to resynchronise every stream
    if (!writer->Write(ev)) break;
  }
  hub_.Unsubscribe(sub);
  return grpc::Status::OK;
}

}  // namespace redflag::agents

namespace redflag::agents {

grpc::Status AgentsServiceImpl::GetSecuritySettings(grpc::ServerContext* ctx,
                                                    const v1::GetSecuritySettingsRequest*,
                                                    v1::SecuritySettings* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  // From the database, not this replica's snapshot: what every replica converges to.
  absl::StatusOr<v1::SecuritySettings> s = settings_store_.Load(settings_.fallback());
  if (!s.ok()) return ToGrpcStatus(s.status());
  *resp = *std::move(s);
  return grpc::Status::OK;
}

grpc::Status AgentsServiceImpl::UpdateSecuritySettings(grpc::ServerContext* ctx,
                                                       const v1::UpdateSecuritySettingsRequest* req,
                                                       v1::SecuritySettings* resp) {
  REDFLAG_CHECK_PEER(gateway_only_, ctx);
  absl::StatusOr<v1::SecuritySettings> s =
      settings_store_.Update(*req, ActorFromMetadata(*ctx), events_, settings_.fallback());
  if (!s.ok()) return ToGrpcStatus(s.status());
  settings_.Set(*s);  // this replica at once; the others on the notification
  *resp = *std::move(s);
  return grpc::Status::OK;
}

}  // namespace redflag::agents

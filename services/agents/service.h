// The agents service's gRPC surface (sync API on a bounded pool; handlers may block on
// PostgreSQL). Only the gateway may call it. Applies policy.h to every agent request.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/event_hub.h"
#include "common/security_events.h"
#include "common/security_settings.h"
#include "common/tls.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "services/agents/policy.h"
#include "services/agents/store.h"

namespace redflag::agents {

class AgentsServiceImpl final : public v1::AgentsService::Service {
 public:
  // `settings` (owned by the caller, started) and `settings_store` outlive the service.
  AgentsServiceImpl(AgentStore& store, const SecurityEventWriter& events,
                    prometheus::Registry& metrics, LiveSecuritySettings& settings,
                    SecuritySettingsStore& settings_store, EventHub& hub);

  grpc::Status RegisterAgent(grpc::ServerContext* ctx, const v1::RegisterAgentRequest* req,
                             v1::Agent* resp) override;
  grpc::Status AuthorizeAgent(grpc::ServerContext* ctx, const v1::AuthorizeAgentRequest* req,
                              v1::Agent* resp) override;
  grpc::Status RecordCheckIns(grpc::ServerContext* ctx, const v1::RecordCheckInsRequest* req,
                              v1::RecordCheckInsResponse* resp) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;
  grpc::Status GetAgent(grpc::ServerContext* ctx, const v1::GetAgentRequest* req,
                        v1::Agent* resp) override;
  grpc::Status BlockAgent(grpc::ServerContext* ctx, const v1::BlockAgentRequest* req,
                          v1::Agent* resp) override;
  grpc::Status ResetAgentVersion(grpc::ServerContext* ctx, const v1::ResetAgentVersionRequest* req,
                                 v1::Agent* resp) override;
  grpc::Status UnblockAgent(grpc::ServerContext* ctx, const v1::UnblockAgentRequest* req,
                            v1::Agent* resp) override;

  grpc::Status WarnAgent(grpc::ServerContext* ctx, const v1::WarnAgentRequest* req,
                         v1::Agent* resp) override;
  grpc::Status VerifyAgent(grpc::ServerContext* ctx, const v1::VerifyAgentRequest* req,
                           v1::Agent* resp) override;
  grpc::Status RebindAgent(grpc::ServerContext* ctx, const v1::RebindAgentRequest* req,
                           v1::Agent* resp) override;
  grpc::Status DeleteAgent(grpc::ServerContext* ctx, const v1::DeleteAgentRequest* req,
                           v1::Agent* resp) override;
  grpc::Status PendingInstructions(grpc::ServerContext* ctx,
                                   const v1::AgentInstructionsRequest* req,
                                   v1::AgentInstructionsResponse* resp) override;
  grpc::Status AgentsOwedInstructions(grpc::ServerContext* ctx, const v1::AgentsOwedRequest* req,
                                      v1::AgentsOwedResponse* resp) override;
  grpc::Status AckInstruction(grpc::ServerContext* ctx, const v1::AckInstructionRequest* req,
                              v1::Agent* resp) override;
  grpc::Status RecordVerify(grpc::ServerContext* ctx, const v1::RecordVerifyRequest* req,
                            v1::Agent* resp) override;
  // Relays registry notifications until the gateway hangs up.
  grpc::Status Watch(grpc::ServerContext* ctx, const v1::WatchAgentsRequest* req,
                     grpc::ServerWriter<v1::AgentEvent>* writer) override;
  grpc::Status GetSecuritySettings(grpc::ServerContext* ctx,
                                   const v1::GetSecuritySettingsRequest* req,
                                   v1::SecuritySettings* resp) override;
  grpc::Status UpdateSecuritySettings(grpc::ServerContext* ctx,
                                      const v1::UpdateSecuritySettingsRequest* req,
                                      v1::SecuritySettings* resp) override;

  v1::Agent ToProto(const AgentRow& row) const { return ToProto(row, Policy()); }
  v1::Agent ToProto(const AgentRow& row, const PolicySettings& policy) const;

 private:
  // Applies policy to one request; records violations, downgrades and auto-blocks.
  // `policy` is read once per request (a batch of check-ins shares one).
  absl::Status Check(const AgentRow& agent, const std::string& machine_id,
                     const std::string& version, const std::string& source,
                     const PolicySettings& policy, std::string* new_highest);

  AgentStore& store_;
  const SecurityEventWriter& events_;
  prometheus::Counter& binding_violations_;
  prometheus::Counter& check_ins_;
  prometheus::Counter& registrations_;
  // An event for an operator action, with the operator from the call's metadata.
  void RecordOperatorEvent(const grpc::ServerContext& ctx, const std::string& type,
                           const std::string& agent_id, const std::string& extra_json = "");
  // Fetch, act, reply: the common shape of the per-agent operator RPCs.
  grpc::Status Reply(const absl::StatusOr<AgentRow>& row, v1::Agent* resp) const;
  // The agent as stored now, or NOT_FOUND.
  grpc::Status ReplyCurrent(const std::string& id, v1::Agent* resp) const;

  // The policy in force now (the operators' settings, reloaded on change).
  PolicySettings Policy() const { return PolicyFrom(*settings_.Get()); }

  LiveSecuritySettings& settings_;
  SecuritySettingsStore& settings_store_;
  EventHub& hub_;
  PeerPolicy gateway_only_{"gateway"};
};

}  // namespace redflag::agents

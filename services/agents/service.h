// The agents service's gRPC surface (sync API on a bounded pool; handlers may block on
// PostgreSQL). Only the gateway may call it. Applies policy.h to every agent request.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "common/security_events.h"
#include "common/tls.h"
#include "redflag/v1/agents.grpc.pb.h"
#include "services/agents/policy.h"
#include "services/agents/store.h"

namespace redflag::agents {

class AgentsServiceImpl final : public v1::AgentsService::Service {
 public:
  AgentsServiceImpl(AgentStore& store, const SecurityEventWriter& events,
                    prometheus::Registry& metrics, PolicySettings settings);

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
  grpc::Status UnblockAgent(grpc::ServerContext* ctx, const v1::UnblockAgentRequest* req,
                            v1::Agent* resp) override;

  v1::Agent ToProto(const AgentRow& row) const;

 private:
  // Applies policy to one request; records violations, downgrades and auto-blocks.
  absl::Status Check(const AgentRow& agent, const std::string& machine_id,
                     const std::string& version, const std::string& source,
                     std::string* new_highest);

  AgentStore& store_;
  const SecurityEventWriter& events_;
  prometheus::Counter& binding_violations_;
  prometheus::Counter& check_ins_;
  prometheus::Counter& registrations_;
  PolicySettings settings_;
  PeerPolicy gateway_only_{"gateway"};
};

}  // namespace redflag::agents

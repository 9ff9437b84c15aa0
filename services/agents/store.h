// PostgreSQL schema `agents`: the registry and each agent's binding. A unique index on
// the fingerprint of active agents makes clone detection atomic. Check-ins are read
// and written in batches (json_to_recordset), two statements per batch.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/paging.h"
#include "common/pg.h"
#include "redflag/v1/agents.pb.h"
#include "redflag/v1/updates.pb.h"
#include "services/agents/policy.h"

namespace redflag::agents {

struct NewAgent {
  std::string machine_id, hostname, platform, version, registration_token_id;
};

// NOTIFY channel for registry changes; payload "<kind>:<agent id>" with kind one of
// pending, blocked, deleted.
inline constexpr char kAgentsChannel[] = "redflag_agents";

struct CheckInWrite {
  std::string agent_id, version, highest_version;
};

class AgentStore {
 public:
  explicit AgentStore(PgPool& pool) : pool_(pool) {}
  // The agents schema's migrations in order (applied by redflag-migrate as the owner).
  static const std::vector<std::string>& Migrations();
  absl::Status Migrate();

  // ALREADY_EXISTS naming the active agent bound to the same fingerprint.
  absl::StatusOr<AgentRow> Create(const NewAgent& a);
  absl::StatusOr<std::optional<AgentRow>> Get(const std::string& id);
  absl::StatusOr<std::vector<AgentRow>> GetMany(const std::vector<std::string>& ids);
  // One page of the agents matching `filter` (compliance and status judged in SQL with
  // `settings`), in registration order after `after` (registration time and id),
  // and how many match in all.
  struct Page {
    std::vector<AgentRow> rows;
    int64_t total = 0;
  };
  absl::StatusOr<Page> List(const v1::ListAgentsRequest& filter, const PolicySettings& settings,
                            const TimeIdCursor& after, int limit);
  absl::Status WriteCheckIns(const std::vector<CheckInWrite>& writes);
  // Takes the next stream sequence number and announces "connected:<agent>:<seq>" on
  // kAgentsChannel (one statement); returns the number.
  absl::StatusOr<int64_t> AnnounceStream(const std::string& agent_id);
  // Writes what a counted violation must leave in the audit trail, inside its transaction;
  // receives the count after the increment.
  using ViolationAudit = std::function<absl::Status(PgConnection& tx, int count)>;
  // Counts a binding violation; blocks the agent once `block_at` is reached (queueing a
  // block notice and notifying the gateways). `audit` runs in the same transaction: the
  // count, the block and their security events are stored together or not at all. Returns
  // the count after the increment (0 for no such agent, nothing audited).
  absl::StatusOr<int> RecordViolation(const std::string& id, int block_at,
                                      const ViolationAudit& audit);
  // Blocking queues a block notice and tells the gateways to close the agent's stream.
  // Sets the agent's reported and highest version to `version` (already validated);
  // `*previous` receives the highest version it replaced. NOT_FOUND for no such agent.
  absl::StatusOr<AgentRow> ResetVersion(const std::string& id, const std::string& version,
                                        std::string* previous);
  absl::StatusOr<AgentRow> SetBlocked(const std::string& id, bool blocked,
                                      const std::string& reason);
  // Queues an instruction (its body set, ids assigned here) and notifies the gateways.
  absl::StatusOr<AgentRow> QueueInstruction(const std::string& agent_id, v1::Instruction in);
  absl::StatusOr<std::vector<v1::Instruction>> PendingInstructions(const std::string& agent_id);
  // Those of `agent_ids` (UUIDs) with an instruction not yet acknowledged: one statement.
  absl::StatusOr<std::vector<std::string>> AgentsOwed(const std::vector<std::string>& agent_ids);
  // NOT_FOUND unless the instruction is the agent's own.
  absl::Status AckInstruction(const std::string& agent_id, const std::string& instruction_id,
                              bool applied, const std::string& error);
  absl::Status RecordVerify(const std::string& agent_id, const std::string& result,
                            const std::vector<std::string>& key_ids);
  // New fingerprint, violations cleared, an automatic block lifted.
  absl::StatusOr<AgentRow> Rebind(const std::string& id, const std::string& machine_id,
                                  const std::string& registration_token_id);
  absl::StatusOr<AgentRow> Delete(const std::string& id);
  PgPool& pool() { return pool_; }

 private:
  PgPool& pool_;
};

}  // namespace redflag::agents

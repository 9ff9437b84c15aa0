// PostgreSQL schema `agents`: the registry and each agent's binding. A unique index on
// the fingerprint of active agents makes clone detection atomic. Check-ins are read
// and written in batches (json_to_recordset), two statements per batch.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/pg.h"
#include "services/agents/policy.h"

namespace redflag::agents {

struct NewAgent {
  std::string machine_id, hostname, platform, version, registration_token_id;
};

struct CheckInWrite {
  std::string agent_id, version, highest_version;
};

class AgentStore {
 public:
  explicit AgentStore(PgPool& pool) : pool_(pool) {}
  absl::Status Migrate();

  // ALREADY_EXISTS naming the active agent bound to the same fingerprint.
  absl::StatusOr<AgentRow> Create(const NewAgent& a);
  absl::StatusOr<std::optional<AgentRow>> Get(const std::string& id);
  absl::StatusOr<std::vector<AgentRow>> GetMany(const std::vector<std::string>& ids);
  absl::StatusOr<std::vector<AgentRow>> List();
  absl::Status WriteCheckIns(const std::vector<CheckInWrite>& writes);
  // Counts a binding violation; blocks the agent once `block_at` is reached.
  // Returns the agent's violation count after the increment.
  absl::StatusOr<int> RecordViolation(const std::string& id, int block_at);
  absl::StatusOr<AgentRow> SetBlocked(const std::string& id, bool blocked,
                                      const std::string& reason);
  PgPool& pool() { return pool_; }

 private:
  PgPool& pool_;
};

}  // namespace redflag::agents

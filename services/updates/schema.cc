#include "services/updates/schema.h"

#include <string>
#include <vector>

namespace redflag::updates {

const std::vector<std::string>& UpdatesMigrations() {
  static const std::vector<std::string> kSteps = {
      R"sql(
CREATE TABLE updates.signing_keys (
  key_id text PRIMARY KEY,
  public_key text NOT NULL,
  state text NOT NULL CHECK (state IN ('primary', 'accepted', 'retired')),
  created_at timestamptz NOT NULL DEFAULT now(),
  retire_after timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_primary_idx ON updates.signing_keys(state) WHERE state = 'primary';
)sql",
      R"sql(
CREATE TABLE updates.packages (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  version text NOT NULL,
  platform text NOT NULL,
  channel text NOT NULL,
  kind integer NOT NULL,
  size bigint NOT NULL,
  sha256 text NOT NULL,
  envelope text NOT NULL,
  key_id text NOT NULL,
  published_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  revoked_reason text NOT NULL DEFAULT ''
);
CREATE INDEX packages_series_idx ON updates.packages(name, platform, channel, created_at);
CREATE TABLE updates.package_chunks (
  update_id uuid NOT NULL REFERENCES updates.packages(id) DEFERRABLE INITIALLY DEFERRED,
  seq integer NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (update_id, seq)
);
CREATE TABLE updates.deliveries (
  id uuid PRIMARY KEY,
  update_id uuid NOT NULL REFERENCES updates.packages(id),
  agent_id text NOT NULL,
  state text NOT NULL,
  failure_reason text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now(),
  offer_acked boolean NOT NULL DEFAULT false,
  revocation_acked boolean NOT NULL DEFAULT false,
  UNIQUE (update_id, agent_id)
);
CREATE INDEX deliveries_agent_idx ON updates.deliveries(agent_id);
)sql",
      R"sql(
ALTER TABLE updates.signing_keys ADD COLUMN endorsement text NOT NULL DEFAULT '';
)sql",
      R"sql(
ALTER TABLE updates.signing_keys DROP CONSTRAINT signing_keys_state_check;
ALTER TABLE updates.signing_keys
  ADD CONSTRAINT signing_keys_state_check
    CHECK (state IN ('primary', 'accepted', 'retired', 'revoked')),
  ADD COLUMN revoked_at timestamptz,
  ADD COLUMN revoked_reason text NOT NULL DEFAULT '';
)sql",
      // ListDeliveries pages an update's deliveries in id order.
      R"sql(
CREATE INDEX deliveries_update_page_idx ON updates.deliveries(update_id, id);
)sql",
      // A publication adds a delivery per matching agent within seconds; statistics that
      // still describe the table before it make the planner scan the update's deliveries
      // for every lookup. Analyse after 2 % new rows (default 10 %), at least 1,000.
      R"sql(
ALTER TABLE updates.deliveries SET
  (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 1000);
)sql",
      // Staged rollouts: the plan (serialized RolloutPlan, hex), where it stands, and each
      // delivery's stage (NULL without a rollout). HELD: a member whose stage has not started.
      R"sql(
CREATE TABLE updates.rollouts (
  update_id uuid PRIMARY KEY REFERENCES updates.packages(id),
  plan text NOT NULL,
  state text NOT NULL CHECK (state IN ('ACTIVE', 'WAITING_APPROVAL', 'PAUSED', 'HALTED',
                                       'ABORTED', 'COMPLETED')),
  current_stage integer NOT NULL DEFAULT 0,
  stage_started_at timestamptz NOT NULL DEFAULT now(),
  forgiven_failures bigint NOT NULL DEFAULT 0,
  paused_by text NOT NULL DEFAULT '' CHECK (paused_by IN ('', 'operator', 'emergency')),
  reason text NOT NULL DEFAULT '',
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollouts_state_idx ON updates.rollouts(state);
ALTER TABLE updates.deliveries ADD COLUMN stage integer;
)sql"};
  return kSteps;
}

absl::Status MigrateUpdatesSchema(PgPool& pool) {
  return ApplyMigrations(pool, "updates", UpdatesMigrations());
}

}  // namespace redflag::updates

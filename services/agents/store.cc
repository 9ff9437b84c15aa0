#include "services/agents/store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/pg_listener.h"
#include "common/status.h"
#include "common/validate.h"

namespace redflag::agents {
namespace {

const std::vector<std::string> kMigrations = {R"sql(
CREATE TABLE agents.agents (
  id uuid PRIMARY KEY,
  machine_id text NOT NULL,
  hostname text NOT NULL,
  platform text NOT NULL,
  version text NOT NULL,
  highest_version text NOT NULL,
  registration_token_id text NOT NULL,
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz,
  blocked_at timestamptz,
  blocked_reason text NOT NULL DEFAULT '',
  binding_violations integer NOT NULL DEFAULT 0,
  deleted_at timestamptz
);
CREATE UNIQUE INDEX agents_active_machine_idx ON agents.agents(machine_id) WHERE deleted_at IS NULL;
)sql",
                                              R"sql(
CREATE TABLE agents.instructions (
  id uuid PRIMARY KEY,
  agent_id uuid NOT NULL REFERENCES agents.agents(id),
  kind text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  acked_at timestamptz,
  applied boolean,
  error text
);
CREATE INDEX instructions_pending_idx ON agents.instructions(agent_id, created_at)
  WHERE acked_at IS NULL;
ALTER TABLE agents.agents ADD COLUMN last_verified_at timestamptz,
  ADD COLUMN verify_result text NOT NULL DEFAULT '',
  ADD COLUMN pinned_key_ids text NOT NULL DEFAULT '';
)sql",
                                              R"sql(
CREATE SEQUENCE agents.stream_seq;
)sql",
                                              // Semantic-version precedence in SQL, exactly as
                                              // Version::Compare (tests/agents/list_pgtest.cc
                                              // compares the two), so compliance filters and
                                              // counts run in the database; NULL when `a` or `b`
                                              // is not a version Version::Parse accepts.
                                              R"sql(
CREATE FUNCTION agents.semver_cmp(a text, b text) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
  pattern constant text :=
    '^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?(\+.*)?$';
  u64 constant numeric := 18446744073709551615;
  ma text[]; mb text[]; pa text[]; pb text[]; x text; y text; nx numeric; ny numeric;
BEGIN
  IF length(a) > 128 OR length(b) > 128 THEN RETURN NULL; END IF;
  ma := regexp_match(a, pattern);
  mb := regexp_match(b, pattern);
  IF ma IS NULL OR mb IS NULL THEN RETURN NULL; END IF;
  IF greatest(ma[1]::numeric, ma[2]::numeric, ma[3]::numeric, mb[1]::numeric, mb[2]::numeric,
              mb[3]::numeric) > u64 THEN
    RETURN NULL;  -- Version::Parse refuses what does not fit 64 bits
  END IF;
  FOR i IN 1..3 LOOP
    IF ma[i]::numeric <> mb[i]::numeric THEN
      RETURN CASE WHEN ma[i]::numeric < mb[i]::numeric THEN -1 ELSE 1 END;
    END IF;
  END LOOP;
  IF ma[5] IS NULL OR mb[5] IS NULL THEN
    RETURN CASE WHEN (ma[5] IS NULL) = (mb[5] IS NULL) THEN 0
                WHEN ma[5] IS NULL THEN 1 ELSE -1 END;
  END IF;
  pa := string_to_array(ma[5], '.');
  pb := string_to_array(mb[5], '.');
  FOR i IN 1..least(cardinality(pa), cardinality(pb)) LOOP
    x := pa[i]; y := pb[i];
    IF x ~ '^[0-9]+$' AND y ~ '^[0-9]+$' THEN
      -- As Version::Compare (absl::SimpleAtoi saturates): beyond 64 bits counts as the maximum.
      nx := least(x::numeric, u64);
      ny := least(y::numeric, u64);
      IF nx <> ny THEN
        RETURN CASE WHEN nx < ny THEN -1 ELSE 1 END;
      END IF;
    ELSIF (x ~ '^[0-9]+$') <> (y ~ '^[0-9]+$') THEN
      RETURN CASE WHEN x ~ '^[0-9]+$' THEN -1 ELSE 1 END;
    ELSIF x <> y THEN
      RETURN CASE WHEN x COLLATE "C" < y COLLATE "C" THEN -1 ELSE 1 END;
    END IF;
  END LOOP;
  RETURN sign(cardinality(pa) - cardinality(pb))::integer;
END $$;
CREATE INDEX agents_list_order_idx ON agents.agents(registered_at, id) WHERE deleted_at IS NULL;
)sql",
                                              // Security settings operators change at run
                                              // time (common/security_settings.h).
                                              R"sql(
CREATE TABLE agents.security_settings (
  name text PRIMARY KEY,
  value text NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
)sql"};

#define COLS                                                                                \
  "a.id, a.machine_id, a.hostname, a.platform, a.version, a.highest_version, "              \
  "a.registration_token_id, floor(extract(epoch from a.registered_at) * 1000000)::bigint, " \
  "coalesce(floor(extract(epoch from a.last_seen_at) * 1000000)::bigint, 0), "              \
  "a.blocked_at IS NOT NULL, a.blocked_reason, a.binding_violations, "                      \
  "coalesce(floor(extract(epoch from a.last_verified_at) * 1000000)::bigint, 0), "          \
  "a.verify_result, a.pinned_key_ids"

constexpr Statement kInsert{
    "agents_insert",
    "INSERT INTO agents.agents AS a (id, machine_id, hostname, platform, version, "
    "highest_version, registration_token_id) VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING " COLS};
constexpr Statement kByMachine{
    "agents_by_machine",
    "SELECT id FROM agents.agents WHERE machine_id = $1 AND deleted_at IS NULL"};
constexpr Statement kGet{
    "agents_get", "SELECT " COLS " FROM agents.agents a WHERE a.id = $1 AND a.deleted_at IS NULL"};
constexpr Statement kGetMany{"agents_get_many",
                             "SELECT " COLS
                             " FROM agents.agents a JOIN json_array_elements_text($1::json) x(id) "
                             "ON a.id = x.id::uuid WHERE a.deleted_at IS NULL"};
// The list filter, in SQL: $1 compliance ('' any, 't', 'f'), $2 status ('' any, ONLINE,
// OFFLINE, BLOCKED), $3 version ('' any), $4 seen within seconds (0 any), $5 offline after
// seconds, $6 minimum version. Compliance is Policy's ComplianceIssues: not blocked, no
// binding violation, version at least the minimum, seen recently.
#define LIST_FILTER                                                                           \
  " FROM agents.agents a WHERE a.deleted_at IS NULL AND ($2 = '' OR $2 = CASE WHEN "          \
  "a.blocked_at IS NOT NULL THEN 'BLOCKED' WHEN a.last_seen_at > now() - make_interval(secs " \
  "=> $5::bigint) THEN 'ONLINE' ELSE 'OFFLINE' END) AND ($3 = '' OR a.version = $3) AND "     \
  "($4::bigint = 0 OR a.last_seen_at > now() - make_interval(secs => $4::bigint)) AND "       \
  "($1 = '' OR $1::boolean = (a.blocked_at IS NULL AND a.binding_violations = 0 AND "         \
  "coalesce(agents.semver_cmp(a.version, $6) >= 0, false) AND coalesce(a.last_seen_at > "     \
  "now() - make_interval(secs => $5::bigint), false)))"
// clang-format off
constexpr Statement kList{
    "agents_list",
    "SELECT " COLS LIST_FILTER
    " AND " REDFLAG_AFTER_TIME_ID("a.registered_at", "a.id", "$7", "$8")
    " ORDER BY a.registered_at, a.id LIMIT $9"};
// clang-format on
constexpr Statement kCount{"agents_count", "SELECT count(*)" LIST_FILTER};
constexpr Statement kWriteCheckIns{
    "agents_write_checkins",
    "UPDATE agents.agents a SET last_seen_at = now(), version = x.version, "
    "highest_version = x.highest_version "
    "FROM json_to_recordset($1::json) AS x(agent_id uuid, version text, highest_version text) "
    "WHERE a.id = x.agent_id"};
constexpr Statement kViolation{
    "agents_violation",
    "UPDATE agents.agents SET binding_violations = binding_violations + 1, "
    "blocked_at = CASE WHEN blocked_at IS NULL AND binding_violations + 1 >= $2 THEN now() "
    "ELSE blocked_at END, "
    "blocked_reason = CASE WHEN blocked_at IS NULL AND binding_violations + 1 >= $2 "
    "THEN 'automatic: repeated machine binding violations' ELSE blocked_reason END "
    "WHERE id = $1 RETURNING binding_violations, blocked_at IS NOT NULL"};
constexpr Statement kBlock{
    "agents_block",
    "UPDATE agents.agents a SET blocked_at = coalesce(blocked_at, now()), blocked_reason = $2 "
    "WHERE id = $1 AND deleted_at IS NULL RETURNING " COLS};
constexpr Statement kUnblock{
    "agents_unblock",
    "UPDATE agents.agents a SET blocked_at = NULL, blocked_reason = '', binding_violations = 0 "
    "WHERE id = $1 AND deleted_at IS NULL RETURNING " COLS};

// Returns the row as now stored, then the highest version it replaced (column 15).
constexpr Statement kResetVersion{
    "agents_reset_version",
    "UPDATE agents.agents a SET highest_version = $2, version = $2 FROM "
    "(SELECT id, highest_version AS previous FROM agents.agents WHERE id = $1 "
    "AND deleted_at IS NULL FOR UPDATE) p WHERE a.id = p.id RETURNING " COLS ", p.previous"};

constexpr Statement kInsertInstruction{
    "agents_insert_instruction",
    "INSERT INTO agents.instructions(id, agent_id, kind, body) VALUES ($1, $2, $3, $4)"};
constexpr Statement kPending{
    "agents_pending",
    "SELECT body FROM agents.instructions WHERE agent_id = $1 AND acked_at IS NULL "
    "ORDER BY created_at LIMIT 100"};
// The array is a constant per call (kPerCall): hashed when it filters, sized when it plans.
constexpr Statement kOwed{"agents_owed",
                          "SELECT DISTINCT agent_id::text FROM agents.instructions "
                          "WHERE agent_id = ANY($1::text[]::uuid[]) AND acked_at IS NULL",
                          Planning::kPerCall};
constexpr Statement kAck{
    "agents_ack",
    "UPDATE agents.instructions SET acked_at = coalesce(acked_at, now()), applied = $3, "
    "error = $4 WHERE id = $2 AND agent_id = $1 RETURNING id"};
constexpr Statement kAckAll{
    "agents_ack_all",
    "UPDATE agents.instructions SET acked_at = now(), applied = false, error = 'agent deleted' "
    "WHERE agent_id = $1 AND acked_at IS NULL"};
constexpr Statement kVerify{
    "agents_verify",
    "UPDATE agents.agents SET last_verified_at = now(), verify_result = $2, pinned_key_ids = $3 "
    "WHERE id = $1"};
constexpr Statement kRebind{
    "agents_rebind",
    "UPDATE agents.agents a SET machine_id = $2, registration_token_id = $3, "
    "binding_violations = 0, "
    "blocked_at = CASE WHEN blocked_reason LIKE 'automatic:%' THEN NULL ELSE blocked_at END, "
    "blocked_reason = CASE WHEN blocked_reason LIKE 'automatic:%' THEN '' ELSE blocked_reason END "
    "WHERE id = $1 AND deleted_at IS NULL RETURNING " COLS};
constexpr Statement kDelete{
    "agents_delete",
    "UPDATE agents.agents a SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL "
    "RETURNING " COLS};

const char* KindOf(const v1::Instruction& in) {
  switch (in.body_case()) {
    case v1::Instruction::kWarning:
      return "warning";
    case v1::Instruction::kVerify:
      return "verify";
    case v1::Instruction::kBlock:
      return "block";
    case v1::Instruction::kOffer:
      return "offer";
    case v1::Instruction::kRevocation:
      return "revocation";
    case v1::Instruction::kKeyAnnouncement:
      return "key_announcement";
    case v1::Instruction::kKeyRevocation:
      return "key_revocation";
    case v1::Instruction::BODY_NOT_SET:
      break;
  }
  return "none";
}

// Inside the caller's transaction: the row and its notification commit together.
absl::Status InsertInstruction(PgConnection& c, const std::string& agent_id, v1::Instruction in,
                               const char* notify_kind) {
  if (in.instruction_id().empty()) in.set_instruction_id(RandomUuid());
  in.set_agent_id(agent_id);
  REDFLAG_RETURN_IF_ERROR(c.Exec(kInsertInstruction, {in.instruction_id(), agent_id, KindOf(in),
                                                      HexEncode(in.SerializeAsString())})
                              .status());
  return Notify(c, kAgentsChannel, absl::StrCat(notify_kind, ":", agent_id));
}

constexpr Statement kAnnounceStream{"agents_announce_stream",
                                    "SELECT seq, pg_notify($2, 'connected:' || $1 || ':' || seq) "
                                    "FROM (SELECT nextval('agents.stream_seq') AS seq) s"};

v1::Instruction BlockNotice(const std::string& reason) {
  v1::Instruction in;
  in.mutable_block()->set_reason(reason);
  return in;
}

AgentRow RowFrom(const PgResult& r, int i) {
  AgentRow a;
  a.id = r.Text(i, 0);
  a.machine_id = r.Text(i, 1);
  a.hostname = r.Text(i, 2);
  a.platform = r.Text(i, 3);
  a.version = r.Text(i, 4);
  a.highest_version = r.Text(i, 5);
  a.registration_token_id = r.Text(i, 6);
  a.registered_at_us = r.Int(i, 7);
  a.last_seen_at_us = r.Int(i, 8);
  a.blocked = r.Bool(i, 9);
  a.blocked_reason = r.Text(i, 10);
  a.binding_violations = static_cast<int>(r.Int(i, 11));
  a.last_verified_at_us = r.Int(i, 12);
  a.verify_result = r.Text(i, 13);
  a.pinned_key_ids = r.Text(i, 14);
  return a;
}

std::vector<AgentRow> RowsFrom(const PgResult& r) {
  std::vector<AgentRow> out;
  out.reserve(r.Rows());
  for (int i = 0; i < r.Rows(); ++i) out.push_back(RowFrom(r, i));
  return out;
}

}  // namespace

const std::vector<std::string>& AgentStore::Migrations() { return kMigrations; }
absl::Status AgentStore::Migrate() { return ApplyMigrations(pool_, "agents", kMigrations); }

absl::StatusOr<AgentRow> AgentStore::Create(const NewAgent& n) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    absl::StatusOr<PgResult> r = c.Exec(kInsert, {RandomUuid(), n.machine_id, n.hostname,
                                                  n.platform, n.version, n.registration_token_id});
    if (r.ok()) {
      out = RowFrom(*r, 0);
      return absl::OkStatus();
    }
    if (r.status().code() != absl::StatusCode::kAlreadyExists) return r.status();
    REDFLAG_ASSIGN_OR_RETURN(PgResult existing, c.Exec(kByMachine, {n.machine_id}));
    return absl::AlreadyExistsError(absl::StrCat(
        "this machine fingerprint is already bound to active agent ",
        existing.Rows() > 0 ? existing.Text(0, 0) : std::string("(unknown)"),
        " (cloned machine or copied disk image?); an operator must rebind or delete that agent"));
  }));
  return out;
}

absl::StatusOr<std::optional<AgentRow>> AgentStore::Get(const std::string& id) {
  std::optional<AgentRow> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kGet, {id}));
    if (r.Rows() == 1) out = RowFrom(r, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<AgentRow>> AgentStore::GetMany(const std::vector<std::string>& ids) {
  std::vector<AgentRow> out;
  std::string json = JsonArray(ids);
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kGetMany, {json}));
    out = RowsFrom(r);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentStore::Page> AgentStore::List(const v1::ListAgentsRequest& f,
                                                  const PolicySettings& settings,
                                                  const TimeIdCursor& after, int limit) {
  Page out;
  std::string compliance = !f.has_compliance() ? "" : (f.compliance() ? "t" : "f");
  std::string status =
      f.status() == v1::AGENT_STATUS_UNSPECIFIED ? "" : v1::AgentStatus_Name(f.status());
  Params filter = {compliance,
                   status,
                   f.version(),
                   absl::StrCat(f.seen_within_seconds()),
                   absl::StrCat(settings.offline_after_seconds),
                   settings.min_version.ToString()};
  Params page = filter;
  page.push_back(absl::StrCat(after.at_us));
  page.push_back(after.id);
  page.push_back(absl::StrCat(limit));
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kList, page));
    out.rows = RowsFrom(r);
    REDFLAG_ASSIGN_OR_RETURN(PgResult n, c.Exec(kCount, filter));
    out.total = n.Int(0, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status AgentStore::WriteCheckIns(const std::vector<CheckInWrite>& writes) {
  if (writes.empty()) return absl::OkStatus();
  std::string json = "[";
  for (size_t i = 0; i < writes.size(); ++i) {
    absl::StrAppend(&json, i ? "," : "", "{\"agent_id\":", JsonQuote(writes[i].agent_id),
                    ",\"version\":", JsonQuote(writes[i].version),
                    ",\"highest_version\":", JsonQuote(writes[i].highest_version), "}");
  }
  json.push_back(']');
  return pool_.WithConnection(
      [&](PgConnection& c) { return c.Exec(kWriteCheckIns, {json}).status(); });
}

absl::StatusOr<int> AgentStore::RecordViolation(const std::string& id, int block_at,
                                                const ViolationAudit& audit) {
  int count = 0;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kViolation, {id, absl::StrCat(block_at)}));
    if (r.Rows() != 1) return absl::OkStatus();
    count = static_cast<int>(r.Int(0, 0));
    REDFLAG_RETURN_IF_ERROR(audit(c, count));
    if (count != block_at) return absl::OkStatus();
    return InsertInstruction(c, id, BlockNotice("repeated machine binding violations"), "blocked");
  }));
  return count;
}

absl::StatusOr<AgentRow> AgentStore::SetBlocked(const std::string& id, bool blocked,
                                                const std::string& reason) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r,
                             blocked ? c.Exec(kBlock, {id, reason}) : c.Exec(kUnblock, {id}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no agent ", id));
    out = RowFrom(r, 0);
    return blocked ? InsertInstruction(c, id, BlockNotice(reason), "blocked") : absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRow> AgentStore::ResetVersion(const std::string& id, const std::string& version,
                                                  std::string* previous) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kResetVersion, {id, version}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no agent ", id));
    out = RowFrom(r, 0);
    *previous = r.Text(0, 15);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRow> AgentStore::QueueInstruction(const std::string& agent_id,
                                                      v1::Instruction in) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kGet, {agent_id}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no agent ", agent_id));
    out = RowFrom(r, 0);
    return InsertInstruction(c, agent_id, std::move(in), "pending");
  }));
  return out;
}

absl::StatusOr<std::vector<v1::Instruction>> AgentStore::PendingInstructions(
    const std::string& agent_id) {
  std::vector<v1::Instruction> out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kPending, {agent_id}));
    for (int i = 0; i < r.Rows(); ++i) {
      REDFLAG_ASSIGN_OR_RETURN(std::string bytes, HexDecode(r.Text(i, 0)));
      v1::Instruction in;
      if (!in.ParseFromString(bytes)) return absl::DataLossError("corrupt queued instruction");
      out.push_back(std::move(in));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<std::string>> AgentStore::AgentsOwed(
    const std::vector<std::string>& agent_ids) {
  std::vector<std::string> out;
  if (agent_ids.empty()) return out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kOwed, {PgTextArray(agent_ids)}));
    for (int i = 0; i < r.Rows(); ++i) out.push_back(r.Text(i, 0));
    return absl::OkStatus();
  }));
  return out;
}

absl::Status AgentStore::AckInstruction(const std::string& agent_id,
                                        const std::string& instruction_id, bool applied,
                                        const std::string& error) {
  return pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r,
                             c.Exec(kAck, {agent_id, instruction_id, applied ? "true" : "false",
                                           StorableText(error, 500)}));
    if (r.Rows() == 0) {
      return absl::NotFoundError(
          absl::StrCat("no instruction ", instruction_id, " for this agent"));
    }
    return absl::OkStatus();
  });
}

absl::Status AgentStore::RecordVerify(const std::string& agent_id, const std::string& result,
                                      const std::vector<std::string>& key_ids) {
  return pool_.WithConnection([&](PgConnection& c) {
    return c.Exec(kVerify, {agent_id, result, absl::StrJoin(key_ids, ",")}).status();
  });
}

absl::StatusOr<AgentRow> AgentStore::Rebind(const std::string& id, const std::string& machine_id,
                                            const std::string& registration_token_id) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    absl::StatusOr<PgResult> r = c.Exec(kRebind, {id, machine_id, registration_token_id});
    if (r.status().code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(
          "the new fingerprint is already bound to another active agent");
    }
    if (!r.ok()) return r.status();
    if (r->Rows() == 0) return absl::NotFoundError(absl::StrCat("no agent ", id));
    out = RowFrom(*r, 0);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AgentRow> AgentStore::Delete(const std::string& id) {
  AgentRow out;
  REDFLAG_RETURN_IF_ERROR(pool_.InTransaction([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kDelete, {id}));
    if (r.Rows() == 0) return absl::NotFoundError(absl::StrCat("no agent ", id));
    out = RowFrom(r, 0);
    REDFLAG_RETURN_IF_ERROR(c.Exec(kAckAll, {id}).status());
    return Notify(c, kAgentsChannel, absl::StrCat("deleted:", id));
  }));
  return out;
}

absl::StatusOr<int64_t> AgentStore::AnnounceStream(const std::string& agent_id) {
  int64_t seq = 0;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kAnnounceStream, {agent_id, kAgentsChannel}));
    seq = r.Int(0, 0);
    return absl::OkStatus();
  }));
  return seq;
}

}  // namespace redflag::agents

#include "common/security_events.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/status.h"

namespace redflag {
namespace {

constexpr Statement kLastHash{"audit_last_hash",
                              "SELECT hash FROM audit.security_events ORDER BY id DESC LIMIT 1"};
constexpr Statement kInsert{
    "audit_insert",
    "INSERT INTO audit.security_events(type, service, actor, source, detail, at_micros, "
    "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"};
constexpr Statement kAll{"audit_all",
                         "SELECT id, type, service, actor, source, detail, at_micros, "
                         "prev_hash, hash FROM audit.security_events ORDER BY id"};

// Length-prefixed fields: no separator inside a field can forge another split.
std::string ChainHash(const std::string& prev, const std::vector<std::string>& fields) {
  std::string input = absl::StrCat(prev.size(), ":", prev);
  for (const auto& f : fields) absl::StrAppend(&input, f.size(), ":", f);
  return Sha256Hex(input);
}

}  // namespace

const std::vector<std::string>& SecurityEventWriter::Migrations() {
  static const std::vector<std::string> kSteps = {
      R"sql(
CREATE TABLE audit.security_events (
  id bigserial PRIMARY KEY,
  type text NOT NULL,
  service text NOT NULL,
  actor text NOT NULL,
  source text NOT NULL,
  detail text NOT NULL CHECK (detail::jsonb IS NOT NULL),
  at_micros bigint NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE
);
CREATE INDEX security_events_type_idx ON audit.security_events(type, id);
CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.security_events is append-only';
END $$;
CREATE TRIGGER security_events_append_only BEFORE UPDATE OR DELETE ON audit.security_events
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER security_events_no_truncate BEFORE TRUNCATE ON audit.security_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
)sql"};
  return kSteps;
}

absl::Status SecurityEventWriter::Migrate() {
  return ApplyMigrations(pool_, "audit", Migrations());
}

absl::Status SecurityEventWriter::Record(PgConnection& conn, const SecurityEventInput& e) const {
  REDFLAG_RETURN_IF_ERROR(conn.ExecScript("SELECT pg_advisory_xact_lock(7242683152)"));
  REDFLAG_ASSIGN_OR_RETURN(PgResult last, conn.Exec(kLastHash));
  std::string prev = last.Rows() > 0 ? last.Text(0, 0) : std::string();
  std::string at = absl::StrCat(absl::ToUnixMicros(absl::Now()));
  std::string hash = ChainHash(prev, {e.type, service_, e.actor, e.source, e.detail_json, at});
  return conn.Exec(kInsert, {e.type, service_, e.actor, e.source, e.detail_json, at, prev, hash})
      .status();
}

absl::Status SecurityEventWriter::Record(const SecurityEventInput& e) const {
  return pool_.InTransaction([&](PgConnection& conn) { return Record(conn, e); });
}

absl::StatusOr<std::vector<v1::SecurityEvent>> ListSecurityEvents(PgPool& pool,
                                                                  const std::string& type,
                                                                  int limit) {
  static constexpr Statement kList{
      "audit_list",
      "SELECT id, type, service, actor, source, detail, at_micros, hash FROM "
      "audit.security_events WHERE ($1 = '' OR type = $1) ORDER BY id DESC LIMIT $2"};
  std::vector<v1::SecurityEvent> out;
  limit = std::clamp(limit <= 0 ? 100 : limit, 1, 1000);
  REDFLAG_RETURN_IF_ERROR(pool.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kList, {type, absl::StrCat(limit)}));
    for (int i = 0; i < r.Rows(); ++i) {
      v1::SecurityEvent e;
      e.set_id(r.Int(i, 0));
      e.set_type(r.Text(i, 1));
      e.set_service(r.Text(i, 2));
      e.set_actor(r.Text(i, 3));
      e.set_source(r.Text(i, 4));
      e.set_detail_json(r.Text(i, 5));
      e.mutable_at()->set_seconds(r.Int(i, 6) / 1000000);
      e.set_hash(r.Text(i, 7));
      out.push_back(std::move(e));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::map<std::string, int64_t>> CountSecurityEvents(
    PgPool& pool, const std::vector<std::string>& types, absl::Duration since) {
  static constexpr Statement kCount{
      "audit_count",
      "SELECT type, count(*) FROM audit.security_events WHERE at_micros >= $1 "
      "AND type IN (SELECT json_array_elements_text($2::json)) GROUP BY type"};
  std::map<std::string, int64_t> out;
  for (const auto& t : types) out[t] = 0;
  std::string json = "[";
  for (size_t i = 0; i < types.size(); ++i)
    absl::StrAppend(&json, i ? "," : "", JsonQuote(types[i]));
  json += "]";
  std::string from = absl::StrCat(absl::ToUnixMicros(absl::Now() - since));
  REDFLAG_RETURN_IF_ERROR(pool.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kCount, {from, json}));
    for (int i = 0; i < r.Rows(); ++i) out[r.Text(i, 0)] = r.Int(i, 1);
    return absl::OkStatus();
  }));
  return out;
}

absl::Status VerifyAuditChain(PgConnection& conn) {
  REDFLAG_ASSIGN_OR_RETURN(PgResult r, conn.Exec(kAll));
  std::string prev;
  for (int i = 0; i < r.Rows(); ++i) {
    std::string expect = ChainHash(
        prev, {r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4), r.Text(i, 5), r.Text(i, 6)});
    if (r.Text(i, 7) != prev || r.Text(i, 8) != expect) {
      return absl::DataLossError(absl::StrCat("audit chain broken at event ", r.Text(i, 0)));
    }
    prev = r.Text(i, 8);
  }
  return absl::OkStatus();
}

}  // namespace redflag

#include "common/security_events.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/status.h"

namespace redflag {
namespace {

constexpr Statement kLastHash{"audit_last_hash",
                              "SELECT hash FROM audit.security_events ORDER BY id DESC LIMIT 1"};
constexpr Statement kInsert{
    "audit_insert",
    "INSERT INTO audit.security_events(type, service, actor, source, detail, at_micros, "
    "prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"};
constexpr Statement kRange{
    "audit_range",
    "SELECT id, type, service, actor, source, detail, at_micros, prev_hash, hash "
    "FROM audit.security_events WHERE id >= $1 AND ($2 = 0 OR id <= $2) ORDER BY id LIMIT $3"};
constexpr Statement kHashBefore{
    "audit_hash_before",
    "SELECT hash FROM audit.security_events WHERE id < $1 ORDER BY id DESC LIMIT 1"};

// The stored form of a field: NUL (which PostgreSQL text cannot hold) spelled out.
std::string Stored(const std::string& field) {
  if (field.find('\0') == std::string::npos) return field;
  std::string out;
  for (char c : field) {
    if (c == '\0') {
      out += "\\u0000";
    } else {
      out += c;
    }
  }
  return out;
}

// HMAC-SHA256 under the audit key over length-prefixed fields (no separator inside a field
// can forge another split), hex.
std::string ChainHash(const std::string& key, const std::string& prev,
                      const std::vector<std::string>& fields) {
  std::string input = absl::StrCat(prev.size(), ":", prev);
  for (const auto& f : fields) absl::StrAppend(&input, f.size(), ":", f);
  return HexEncode(HmacSha256(key, input));
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

absl::Status SecurityEventWriter::Record(PgConnection& conn, const SecurityEventInput& raw) const {
  const SecurityEventInput e{Stored(raw.type), Stored(raw.actor), Stored(raw.source),
                             Stored(raw.detail_json)};
  REDFLAG_RETURN_IF_ERROR(conn.ExecScript("SELECT pg_advisory_xact_lock(7242683152)"));
  REDFLAG_ASSIGN_OR_RETURN(PgResult last, conn.Exec(kLastHash));
  std::string prev = last.Rows() > 0 ? last.Text(0, 0) : std::string();
  std::string at =
      absl::StrCat(absl::ToUnixMicros(raw.at == absl::InfinitePast() ? absl::Now() : raw.at));
  std::string hash =
      ChainHash(key_, prev, {e.type, service_, e.actor, e.source, e.detail_json, at});
  return conn.Exec(kInsert, {e.type, service_, e.actor, e.source, e.detail_json, at, prev, hash})
      .status();
}

namespace {

// Failures that mean "the database is away", not "this event is wrong".
bool DatabaseAway(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded || s.code() == absl::StatusCode::kAborted;
}

constexpr absl::Duration kFirstRetry = absl::Milliseconds(500);
constexpr absl::Duration kMaxRetry = absl::Seconds(2);

}  // namespace

SecurityEventWriter::SecurityEventWriter(PgPool& pool, std::string service, std::string audit_key)
    : pool_(pool),
      service_(std::move(service)),
      key_(std::move(audit_key)),
      flusher_([this] { Flush(); }) {}

SecurityEventWriter::~SecurityEventWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  flusher_.join();
  if (!queued_.empty()) {
    LogError(absl::StrCat(
        queued_.size(), " security events dropped at shutdown: the database was away; first: ",
        EscapeForLog(queued_.front().type), " by ", EscapeForLog(queued_.front().actor)));
  }
}

void SecurityEventWriter::ExposeMetrics(prometheus::Registry& registry) {
  std::lock_guard<std::mutex> lock(mu_);
  waiting_gauge_ = &prometheus::BuildGauge()
                        .Name("redflag_security_events_waiting")
                        .Help("Security events waiting for the database to be written")
                        .Register(registry)
                        .Add({});
  dropped_ = &prometheus::BuildCounter()
                  .Name("redflag_security_events_dropped_total")
                  .Help("Security events lost: more than 10,000 waited for the database")
                  .Register(registry)
                  .Add({});
}

size_t SecurityEventWriter::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_.size();
}

absl::Status SecurityEventWriter::Record(const SecurityEventInput& e) const {
  SecurityEventInput event = e;
  if (event.at == absl::InfinitePast()) event.at = absl::Now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Behind events already waiting: the trail keeps the order things happened in.
    if (!queued_.empty()) return Queue(std::move(event), absl::UnavailableError("queued"));
  }
  absl::Status s = pool_.InTransaction([&](PgConnection& conn) { return Record(conn, event); });
  if (s.ok() || !DatabaseAway(s)) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return Queue(std::move(event), s);
}

absl::Status SecurityEventWriter::Queue(SecurityEventInput event, const absl::Status& why) const {
  if (queued_.size() >= kMaxQueued) {
    if (dropped_ != nullptr) dropped_->Increment();
    LogError(absl::StrCat("security event dropped: ", kMaxQueued,
                          " already wait for the database: ", EscapeForLog(event.type), " by ",
                          EscapeForLog(event.actor)));
    return absl::ResourceExhaustedError(
        absl::StrCat("security event not recorded: ", why.message()));
  }
  queued_.push_back(std::move(event));
  if (waiting_gauge_ != nullptr) waiting_gauge_->Set(static_cast<double>(queued_.size()));
  cv_.notify_all();
  return absl::OkStatus();
}

void SecurityEventWriter::Flush() {
  absl::Duration backoff = absl::ZeroDuration();
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (backoff > absl::ZeroDuration()) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(backoff), [this] { return stopping_; });
    } else {
      cv_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
    }
    if (stopping_) return;
    if (queued_.empty()) continue;
    SecurityEventInput next = queued_.front();  // stays queued until written: keeps the order
    lock.unlock();
    absl::Status s = pool_.InTransaction([&](PgConnection& conn) { return Record(conn, next); });
    lock.lock();
    if (s.ok() || !DatabaseAway(s)) {
      if (!s.ok()) {
        LogError(absl::StrCat("security event dropped: ", s.message(), ": ",
                              EscapeForLog(next.type), " by ", EscapeForLog(next.actor)));
        if (dropped_ != nullptr) dropped_->Increment();
      }
      queued_.pop_front();
      if (waiting_gauge_ != nullptr) waiting_gauge_->Set(static_cast<double>(queued_.size()));
      backoff = absl::ZeroDuration();
    } else {
      backoff = backoff == absl::ZeroDuration() ? kFirstRetry : std::min(2 * backoff, kMaxRetry);
    }
  }
}

absl::StatusOr<AuditVerification> SecurityEventWriter::Verify(int64_t from_id,
                                                              int64_t to_id) const {
  AuditVerification out;
  REDFLAG_RETURN_IF_ERROR(pool_.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(out, VerifyAuditChain(c, key_, from_id, to_id));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<v1::SecurityEvent>> ListSecurityEvents(PgPool& pool,
                                                                  const std::string& type,
                                                                  int64_t before_id, int limit) {
  static constexpr Statement kList{
      "audit_list",
      "SELECT id, type, service, actor, source, detail, at_micros, hash FROM "
      "audit.security_events WHERE ($1 = '' OR type = $1) AND id < $3::bigint "
      "ORDER BY id DESC LIMIT $2"};
  std::vector<v1::SecurityEvent> out;
  REDFLAG_RETURN_IF_ERROR(pool.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r,
                             c.Exec(kList, {type, absl::StrCat(limit), absl::StrCat(before_id)}));
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

absl::Status ListSecurityEventsPage(PgPool& pool, const v1::ListSecurityEventsRequest& req,
                                    v1::ListSecurityEventsResponse& resp) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // still honoured for old callers
  const int32_t legacy_limit = req.limit();
#pragma GCC diagnostic pop
  if (legacy_limit != 0 && req.page_size() != 0 && legacy_limit != req.page_size()) {
    return absl::InvalidArgumentError(
        "limit is the older name of page_size: set one, or both to the same value");
  }
  REDFLAG_ASSIGN_OR_RETURN(int size,
                           PageSize(req.page_size() != 0 ? req.page_size() : legacy_limit));
  if (req.type().size() > 64 || !std::all_of(req.type().begin(), req.type().end(), [](char c) {
        return absl::ascii_isupper(c) || absl::ascii_isdigit(c) || c == '_';
      })) {
    return absl::InvalidArgumentError(
        "type is an event type such as AUTH_FAILURE: at most 64 of A-Z, 0-9 and _");
  }
  int64_t before_id = std::numeric_limits<int64_t>::max();
  if (!req.page_token().empty()) {
    absl::StatusOr<std::vector<std::string>> key = ParsePageToken("events", req.page_token(), 2);
    // The token carries the type it was made for: another type's token would skip events.
    if (!key.ok() || (*key)[0] != req.type() || !absl::SimpleAtoi((*key)[1], &before_id)) {
      return absl::InvalidArgumentError(
          "page_token is not one this RPC returned for the same type");
    }
  }
  REDFLAG_ASSIGN_OR_RETURN(std::vector<v1::SecurityEvent> events,
                           ListSecurityEvents(pool, req.type(), before_id, size + 1));
  if (static_cast<int>(events.size()) > size) {
    events.pop_back();
    resp.set_next_page_token(
        MakePageToken("events", {req.type(), absl::StrCat(events.back().id())}));
  }
  for (auto& e : events) *resp.add_events() = std::move(e);
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, int64_t>> CountSecurityEvents(
    PgPool& pool, const std::vector<std::string>& types, absl::Duration since) {
  static constexpr Statement kCount{
      "audit_count",
      "SELECT type, count(*) FROM audit.security_events WHERE at_micros >= $1 "
      "AND type = " REDFLAG_ANY_OF_JSON("$2") " GROUP BY type"};
  std::map<std::string, int64_t> out;
  for (const auto& t : types) out[t] = 0;
  std::string json = JsonArray(types);
  std::string from = absl::StrCat(absl::ToUnixMicros(absl::Now() - since));
  REDFLAG_RETURN_IF_ERROR(pool.WithConnection([&](PgConnection& c) -> absl::Status {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, c.Exec(kCount, {from, json}));
    for (int i = 0; i < r.Rows(); ++i) out[r.Text(i, 0)] = r.Int(i, 1);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<AuditVerification> VerifyAuditChain(PgConnection& conn, const std::string& audit_key,
                                                   int64_t from_id, int64_t to_id) {
  constexpr int kBatch = 5000;
  AuditVerification out;
  from_id = std::max<int64_t>(from_id, 1);
  std::string prev;
  REDFLAG_ASSIGN_OR_RETURN(PgResult before, conn.Exec(kHashBefore, {absl::StrCat(from_id)}));
  if (before.Rows() == 1) prev = before.Text(0, 0);
  int64_t next = from_id;
  while (true) {
    REDFLAG_ASSIGN_OR_RETURN(PgResult r, conn.Exec(kRange, {absl::StrCat(next), absl::StrCat(to_id),
                                                            absl::StrCat(kBatch)}));
    for (int i = 0; i < r.Rows(); ++i) {
      int64_t id = r.Int(i, 0);
      std::string expect = ChainHash(
          audit_key, prev,
          {r.Text(i, 1), r.Text(i, 2), r.Text(i, 3), r.Text(i, 4), r.Text(i, 5), r.Text(i, 6)});
      ++out.checked;
      out.last_id = id;
      if (r.Text(i, 7) != prev) {
        out.first_bad_id = id;
        out.reason =
            "prev_hash does not match the preceding event's hash (an event before it "
            "was removed or changed)";
        return out;
      }
      if (r.Text(i, 8) != expect) {
        out.first_bad_id = id;
        out.reason =
            "hash does not match the event's contents under the audit key (the event was "
            "edited, or sealed without the key)";
        return out;
      }
      prev = r.Text(i, 8);
      next = id + 1;
    }
    if (r.Rows() < kBatch) return out;
  }
}

absl::Status VerifyAuditChain(PgConnection& conn, const std::string& audit_key) {
  REDFLAG_ASSIGN_OR_RETURN(AuditVerification v, VerifyAuditChain(conn, audit_key, 1, 0));
  if (v.first_bad_id != 0) {
    return absl::DataLossError(
        absl::StrCat("audit chain broken at event ", v.first_bad_id, ": ", v.reason));
  }
  return absl::OkStatus();
}

}  // namespace redflag

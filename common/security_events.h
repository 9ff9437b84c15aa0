// The append-only audit trail (schema `audit`). Each event's hash covers the previous
// event's hash and its own canonical fields, so editing or deleting a past event breaks
// the chain; UPDATE, DELETE and TRUNCATE are refused by trigger. Never record secrets.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pg.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "redflag/v1/common.pb.h"

namespace redflag {

struct SecurityEventInput {
  std::string type;    // e.g. MACHINE_ID_MISMATCH
  std::string actor;   // who acted (user, agent id, service)
  std::string source;  // peer address
  std::string detail_json = "{}";
  absl::Time at = absl::InfinitePast();  // when it happened; InfinitePast: when recorded
};

// What a verification of the chain found.
struct AuditVerification {
  int64_t checked = 0;       // events recomputed
  int64_t last_id = 0;       // the last event checked
  int64_t first_bad_id = 0;  // 0 when every checked event matched
  std::string reason;        // why first_bad_id failed
};

// Events are sealed with HMAC-SHA256 under the audit key (REDFLAG_AUDIT_KEY), a secret the
// database does not hold: someone who can rewrite rows (a superuser) cannot re-seal the
// chain after an edit.
//
// An event recorded on its own (Record(event)) while the database is away is not lost: it
// waits in memory, with the time it happened, and a background thread writes the waiting
// events in order (retrying after 0.5 s, backing off to 2 s) once the database is back.
// Events recorded meanwhile queue behind them. At most kMaxQueued wait; one more is
// dropped, counted (redflag_security_events_dropped_total) and logged with its type and
// actor. Events still waiting when the writer is destroyed are logged as dropped.
// Thread-safe; `pool` must outlive the writer.
class SecurityEventWriter {
 public:
  static constexpr size_t kMaxQueued = 10000;

  SecurityEventWriter(PgPool& pool, std::string service, std::string audit_key);
  ~SecurityEventWriter();
  SecurityEventWriter(const SecurityEventWriter&) = delete;
  SecurityEventWriter& operator=(const SecurityEventWriter&) = delete;

  // redflag_security_events_waiting (gauge) and redflag_security_events_dropped_total.
  void ExposeMetrics(prometheus::Registry& registry);
  // Events waiting for the database now.
  size_t waiting() const;

  static const std::vector<std::string>& Migrations();
  // Applies the audit schema's migrations.
  absl::Status Migrate();
  // Appends inside the caller's transaction (the chain lock is held until it commits).
  // PostgreSQL text cannot hold NUL: NUL bytes are stored (and hashed) as "\u0000", so
  // the hash always covers exactly the stored bytes.
  absl::Status Record(PgConnection& conn, const SecurityEventInput& event) const;
  // Verifies events from_id..to_id (0: to the end) under this writer's key.
  absl::StatusOr<AuditVerification> Verify(int64_t from_id, int64_t to_id) const;
  // Appends in a transaction of its own; while the database is away (UNAVAILABLE,
  // DEADLINE_EXCEEDED, ABORTED) the event waits for it and this returns OK. Fails only when
  // the event cannot be stored (invalid) or kMaxQueued events already wait.
  absl::Status Record(const SecurityEventInput& event) const;

 private:
  absl::Status Queue(SecurityEventInput event, const absl::Status& why) const;  // mu_ held
  void Flush();  // the background thread

  PgPool& pool_;
  std::string service_;
  std::string key_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::deque<SecurityEventInput> queued_;  // oldest first
  bool stopping_ = false;
  prometheus::Gauge* waiting_gauge_ = nullptr;
  prometheus::Counter* dropped_ = nullptr;
  std::thread flusher_;
};

// Newest first, optionally of one type, with ids below `before_id`; at most `limit`.
absl::StatusOr<std::vector<v1::SecurityEvent>> ListSecurityEvents(PgPool& pool,
                                                                  const std::string& type,
                                                                  int64_t before_id, int limit);
// One page of ListSecurityEvents: validates the request (page size, the deprecated limit,
// a token made for the same type) and fills the reply with its next_page_token.
absl::Status ListSecurityEventsPage(PgPool& pool, const v1::ListSecurityEventsRequest& req,
                                    v1::ListSecurityEventsResponse& resp);
// Events per type within the last `since`.
absl::StatusOr<std::map<std::string, int64_t>> CountSecurityEvents(
    PgPool& pool, const std::vector<std::string>& types, absl::Duration since);

// Recomputes the hashes of events from_id..to_id (0: to the end) in id order, in batches,
// each against its own fields and its predecessor's stored hash, under `audit_key`. Finds
// edits, re-sealed edits, re-ordering and deletions inside the range (not a deleted tail).
absl::StatusOr<AuditVerification> VerifyAuditChain(PgConnection& conn, const std::string& audit_key,
                                                   int64_t from_id, int64_t to_id);
// The whole chain; DATA_LOSS naming the first event that does not match.
absl::Status VerifyAuditChain(PgConnection& conn, const std::string& audit_key);

}  // namespace redflag

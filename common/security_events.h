// The append-only audit trail (schema `audit`). Each event's hash covers the previous
// event's hash and its own canonical fields, so editing or deleting a past event breaks
// the chain; UPDATE, DELETE and TRUNCATE are refused by trigger. Never record secrets.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/pg.h"
#include "redflag/v1/common.pb.h"

namespace redflag {

struct SecurityEventInput {
  std::string type;    // e.g. MACHINE_ID_MISMATCH
  std::string actor;   // who acted (user, agent id, service)
  std::string source;  // peer address
  std::string detail_json = "{}";
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
class SecurityEventWriter {
 public:
  SecurityEventWriter(PgPool& pool, std::string service, std::string audit_key)
      : pool_(pool), service_(std::move(service)), key_(std::move(audit_key)) {}

  static const std::vector<std::string>& Migrations();
  // Applies the audit schema's migrations.
  absl::Status Migrate();
  // Appends inside the caller's transaction (the chain lock is held until it commits).
  // PostgreSQL text cannot hold NUL: NUL bytes are stored (and hashed) as "\u0000", so
  // the hash always covers exactly the stored bytes.
  absl::Status Record(PgConnection& conn, const SecurityEventInput& event) const;
  // Verifies events from_id..to_id (0: to the end) under this writer's key.
  absl::StatusOr<AuditVerification> Verify(int64_t from_id, int64_t to_id) const;
  // Appends in a transaction of its own.
  absl::Status Record(const SecurityEventInput& event) const;

 private:
  PgPool& pool_;
  std::string service_;
  std::string key_;
};

// Newest first, optionally of one type; at most `limit` (1..1000).
absl::StatusOr<std::vector<v1::SecurityEvent>> ListSecurityEvents(PgPool& pool,
                                                                  const std::string& type,
                                                                  int limit);
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

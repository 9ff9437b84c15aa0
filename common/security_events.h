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

class SecurityEventWriter {
 public:
  SecurityEventWriter(PgPool& pool, std::string service)
      : pool_(pool), service_(std::move(service)) {}

  static const std::vector<std::string>& Migrations();
  // Applies the audit schema's migrations.
  absl::Status Migrate();
  // Appends inside the caller's transaction (the chain lock is held until it commits).
  absl::Status Record(PgConnection& conn, const SecurityEventInput& event) const;
  // Appends in a transaction of its own.
  absl::Status Record(const SecurityEventInput& event) const;

 private:
  PgPool& pool_;
  std::string service_;
};

// Newest first, optionally of one type; at most `limit` (1..1000).
absl::StatusOr<std::vector<v1::SecurityEvent>> ListSecurityEvents(PgPool& pool,
                                                                  const std::string& type,
                                                                  int limit);
// Events per type within the last `since`.
absl::StatusOr<std::map<std::string, int64_t>> CountSecurityEvents(
    PgPool& pool, const std::vector<std::string>& types, absl::Duration since);

// Recomputes every hash in order; DATA_LOSS naming the first event that does not match.
absl::Status VerifyAuditChain(PgConnection& conn);

}  // namespace redflag

// A binding violation is counted, may block the agent, and is audited in one transaction:
// nobody can see the agent blocked while the violation that blocked it is missing from the
// audit trail, and a violation whose event cannot be written is not counted either.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"
#include "common/encoding.h"
#include "common/security_events.h"
#include "common/status.h"
#include "services/agents/store.h"
#include "tests/support/test_env.h"

using namespace redflag;

TEST_CASE("a binding violation, the block it causes and their security events commit together",
          "[pg][agents][binding]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(2);
  agents::AgentStore store(*pool);
  REQUIRE(store.Migrate().ok());
  SecurityEventWriter events(*pool, "redflag-agents",
                             redflag::testing::TestVar("REDFLAG_AUDIT_KEY"));
  REQUIRE(events.Migrate().ok());
  absl::StatusOr<agents::AgentRow> agent = store.Create(
      {HexEncode(RandomBytes(32)), "violations-host", "Linux-x86_64", "0.2.0", "token-violations"});
  REQUIRE(agent.ok());
  const std::string id = agent->id;
  auto state = [&] {
    absl::StatusOr<std::optional<agents::AgentRow>> row = store.Get(id);
    REQUIRE(row.ok());
    REQUIRE(row->has_value());
    return **row;
  };
  static constexpr Statement kEvents{
      "test_violation_events",
      "SELECT count(*) FROM audit.security_events WHERE actor = $1 AND type = $2"};
  auto events_of = [&](const std::string& type) {
    int64_t n = -1;
    REQUIRE(pool->WithConnection([&](PgConnection& c) -> absl::Status {
                  absl::StatusOr<PgResult> r = c.Exec(kEvents, {id, type});
                  if (!r.ok()) return r.status();
                  n = r->Int(0, 0);
                  return absl::OkStatus();
                })
                .ok());
    return n;
  };
  auto audit = [&](PgConnection& tx, int n) -> absl::Status {
    REDFLAG_RETURN_IF_ERROR(events.Record(
        tx, {"MACHINE_ID_MISMATCH", id, "test", absl::StrCat("{\"violations\":", n, "}")}));
    return n == 2 ? events.Record(tx, {"AGENT_AUTO_BLOCKED", id, "test", "{}"}) : absl::OkStatus();
  };

  // The event cannot be written: the violation is not counted either.
  absl::StatusOr<int> refused = store.RecordViolation(
      id, 2, [](PgConnection&, int) { return absl::UnavailableError("audit trail away"); });
  CHECK(refused.status().code() == absl::StatusCode::kUnavailable);
  CHECK(state().binding_violations == 0);

  absl::StatusOr<int> first = store.RecordViolation(id, 2, audit);
  REQUIRE(first.ok());
  CHECK(*first == 1);
  CHECK_FALSE(state().blocked);
  CHECK(events_of("MACHINE_ID_MISMATCH") == 1);

  absl::StatusOr<int> second = store.RecordViolation(id, 2, audit);
  REQUIRE(second.ok());
  CHECK(*second == 2);
  agents::AgentRow blocked = state();
  CHECK(blocked.blocked);
  CHECK(blocked.binding_violations == 2);
  CHECK(events_of("MACHINE_ID_MISMATCH") == 2);
  CHECK(events_of("AGENT_AUTO_BLOCKED") == 1);
  CHECK(pool->WithConnection([&](PgConnection& c) {
              return VerifyAuditChain(c, redflag::testing::TestVar("REDFLAG_AUDIT_KEY"));
            })
            .ok());
}

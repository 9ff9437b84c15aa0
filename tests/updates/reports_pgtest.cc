// Delivery reports against a real PostgreSQL: retried, repeated and overtaken reports
// leave the rollout status exactly as the agent's last real step, and say so.
#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/status.h"
#include "services/updates/schema.h"
#include "services/updates/store.h"
#include "services/updates/validation.h"
#include "tests/support/test_env.h"

using namespace redflag;

namespace {

// One package and one OFFERED delivery for `agent`; returns the delivery id.
std::string OfferedDelivery(PgPool& pool, const std::string& agent) {
  std::string update = "", delivery = "";
  absl::Status s = pool.WithConnection([&](PgConnection& c) -> absl::Status {
    static constexpr Statement kPackage{
        "test_package",
        "INSERT INTO updates.packages(id, name, version, platform, channel, kind, size, sha256, "
        "envelope, key_id, published_by) VALUES (gen_random_uuid(), 'reports-test', "
        "$1, 'test', 'test', 1, 1, '00', '', 'k', 'test') RETURNING id::text"};
    static constexpr Statement kDelivery{
        "test_delivery",
        "INSERT INTO updates.deliveries(id, update_id, agent_id, state) VALUES "
        "(gen_random_uuid(), $1::uuid, $2, 'OFFERED') RETURNING id::text"};
    absl::StatusOr<PgResult> p = c.Exec(kPackage, {HexEncode(RandomBytes(8))});
    if (!p.ok()) return p.status();
    update = p->Text(0, 0);
    absl::StatusOr<PgResult> d = c.Exec(kDelivery, {update, agent});
    if (!d.ok()) return d.status();
    delivery = d->Text(0, 0);
    return absl::OkStatus();
  });
  REQUIRE(s.ok());
  return delivery;
}

v1::ReportDeliveryRequest Report(const std::string& agent, const std::string& delivery,
                                 v1::DeliveryState state) {
  v1::ReportDeliveryRequest r;
  r.set_agent_id(agent);
  r.set_delivery_id(delivery);
  r.set_state(state);
  return r;
}

// A migrated database and the store over it, for one test case.
struct StoreOnPg {
  StoreOnPg() : pool(Migrated()), store(*pool) {}
  static std::unique_ptr<PgPool> Migrated() {
    REQUIRE(InitCrypto().ok());
    auto pool = redflag::testing::TestPool(2);
    REQUIRE(updates::MigrateUpdatesSchema(*pool).ok());
    return pool;
  }
  std::unique_ptr<PgPool> pool;
  updates::UpdateStore store;
};

}  // namespace

TEST_CASE_METHOD(StoreOnPg, "delivery reports are idempotent and never move a delivery backwards",
                 "[updates][reports][pg]") {
  const std::string agent = "agent-" + HexEncode(RandomBytes(4));
  const std::string d = OfferedDelivery(*pool, agent);

  auto first = store.Report(Report(agent, d, v1::DOWNLOADING));
  REQUIRE(first.ok());
  CHECK(first->changed);
  CHECK(first->delivery.state() == v1::DOWNLOADING);

  // INSTALLED overtakes VERIFIED (forwarded out of order, or VERIFIED lost and retried).
  auto installed = store.Report(Report(agent, d, v1::INSTALLED));
  REQUIRE(installed.ok());
  CHECK(installed->changed);
  auto late = store.Report(Report(agent, d, v1::VERIFIED));
  REQUIRE(late.ok());  // accepted, changes nothing
  CHECK_FALSE(late->changed);
  CHECK(late->delivery.state() == v1::INSTALLED);
  auto again = store.Report(Report(agent, d, v1::INSTALLED));  // a retry after a lost reply
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);

  // A contradiction is refused and says why; the record stays INSTALLED.
  auto failed = store.Report(Report(agent, d, v1::FAILED));
  CHECK(failed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(failed.status().message() == "delivery is INSTALLED; it cannot become FAILED");

  // Another agent cannot report on this delivery.
  auto other = store.Report(Report("someone-else", d, v1::INSTALLED));
  CHECK(other.status().code() == absl::StatusCode::kFailedPrecondition);

  v1::ListDeliveriesRequest filter;
  filter.set_agent_id(agent);
  auto rows = store.Deliveries(filter, "", 10);
  REQUIRE(rows.ok());
  REQUIRE(rows->rows.size() == 1);
  CHECK(rows->rows[0].state() == v1::INSTALLED);
  CHECK(rows->counts == std::map<std::string, int64_t>{{"INSTALLED", 1}});
}

TEST_CASE_METHOD(StoreOnPg,
                 "an offer's ack ends a delivery whose final report was lost, and only then",
                 "[updates][reports][pg]") {
  const std::string agent = "agent-" + HexEncode(RandomBytes(4));
  auto state_of = [&](const std::string& d) {
    v1::ListDeliveriesRequest filter;
    filter.set_agent_id(agent);
    auto rows = store.Deliveries(filter, "", 10);
    REQUIRE(rows.ok());
    for (const auto& row : rows->rows) {
      if (row.delivery_id() == d) return std::make_pair(row.state(), row.failure_reason());
    }
    FAIL("no delivery " << d);
    return std::make_pair(v1::DELIVERY_STATE_UNSPECIFIED, std::string());
  };

  // Installed: DOWNLOADING was recorded, the INSTALLED report died with a gateway, the ack
  // (applied) got through. Before, the delivery stayed DOWNLOADING for good: acked offers
  // are not delivered again, so the agent never had a reason to report a second time.
  const std::string installed = OfferedDelivery(*pool, agent);
  REQUIRE(store.Report(Report(agent, installed, v1::DOWNLOADING)).ok());
  auto acked = store.AckOffer(agent, installed, true, "");
  REQUIRE(acked.ok());
  CHECK(acked->closed);
  CHECK(acked->delivery.state() == v1::INSTALLED);
  CHECK(state_of(installed).first == v1::INSTALLED);
  // The late report, if it comes after all, changes nothing; a repeated ack closes nothing.
  auto late = store.Report(Report(agent, installed, v1::INSTALLED));
  REQUIRE(late.ok());
  CHECK_FALSE(late->changed);
  auto again = store.AckOffer(agent, installed, true, "");
  REQUIRE(again.ok());
  CHECK_FALSE(again->closed);

  // Failed: the FAILED report was lost; the ack (not applied) carries the reason.
  const std::string failed = OfferedDelivery(*pool, agent);
  auto refused = store.AckOffer(agent, failed, false, "checksum mismatch");
  REQUIRE(refused.ok());
  CHECK(refused->closed);
  CHECK(state_of(failed) == std::make_pair(v1::FAILED, std::string("checksum mismatch")));

  // Reported first (the usual order): the ack ends nothing and keeps the report's reason.
  const std::string reported = OfferedDelivery(*pool, agent);
  v1::ReportDeliveryRequest r = Report(agent, reported, v1::FAILED);
  r.set_failure_reason("signature did not verify");
  REQUIRE(store.Report(r).ok());
  auto after = store.AckOffer(agent, reported, false, "something shorter");
  REQUIRE(after.ok());
  CHECK_FALSE(after->closed);
  CHECK(state_of(reported) == std::make_pair(v1::FAILED, std::string("signature did not verify")));

  // Another agent's ack is refused and changes nothing.
  const std::string theirs = OfferedDelivery(*pool, agent);
  CHECK(store.AckOffer("someone-else", theirs, true, "").status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(state_of(theirs).first == v1::OFFERED);
}

TEST_CASE_METHOD(StoreOnPg,
                 "a failure report with NUL, control bytes or a long multibyte reason is recorded",
                 "[updates][reports][pg]") {
  // Before: the reason went to PostgreSQL raw (NUL refused as 'malformed value') or cut at
  // byte 500 inside a UTF-8 sequence (refused too), the forwarder dropped the report as a
  // permanent error, and the FAILED outcome was lost.
  for (const std::string& reason : {std::string("bad\0byte\r\nforged log line", 25),
                                    std::string(499, 'x') + "\xc3\xa9" + "tail"}) {
    const std::string agent = "agent-" + HexEncode(RandomBytes(4));
    const std::string d = OfferedDelivery(*pool, agent);
    v1::ReportDeliveryRequest r = Report(agent, d, v1::FAILED);
    r.set_failure_reason(reason);
    r.set_failure_code("checksum");
    absl::StatusOr<v1::ReportDeliveryRequest> normal = updates::NormalizeDeliveryReport(r);
    REQUIRE(normal.ok());
    auto stored = store.Report(*normal);
    INFO(stored.status());
    REQUIRE(stored.ok());
    CHECK(stored->delivery.state() == v1::FAILED);
    CHECK(stored->delivery.failure_reason().size() <= updates::kMaxFailureReasonBytes);
  }
}

TEST_CASE("delivery reports are refused for what cannot be recorded, with the reason",
          "[updates][reports]") {
  v1::ReportDeliveryRequest r = Report("agent-1", "not-a-uuid", v1::INSTALLED);
  auto bad_id = updates::NormalizeDeliveryReport(r);
  CHECK(bad_id.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad_id.status().message() == "delivery_id must be a UUID");
  r.set_delivery_id("1b4e28ba-2fa1-11d2-883f-0016d3cca427");
  for (v1::DeliveryState s : {v1::DELIVERY_STATE_UNSPECIFIED, v1::OFFERED, v1::WITHDRAWN}) {
    r.set_state(s);
    CHECK(updates::NormalizeDeliveryReport(r).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  r.set_state(v1::FAILED);
  r.set_failure_code("made-up\nlabel");
  auto normal = updates::NormalizeDeliveryReport(r);
  REQUIRE(normal.ok());
  CHECK(normal->failure_code() == "other");  // metric labels stay bounded
}

TEST_CASE_METHOD(StoreOnPg, "rollout counts are exact and pages cover every delivery past 10,000",
                 "[updates][reports][pg][paging]") {
  // Before: one query capped at 10,000 rows, counted in C++: a rollout of 10,050 agents
  // showed 10,000 (and which 50 were missing depended on update times).
  const std::string first = OfferedDelivery(*pool, "agent-" + HexEncode(RandomBytes(4)));
  std::string update;
  REQUIRE(pool->WithConnection([&](PgConnection& c) -> absl::Status {
                static constexpr Statement kUpdateOf{
                    "test_update_of",
                    "SELECT update_id::text FROM updates.deliveries WHERE id = $1"};
                static constexpr Statement kMany{
                    "test_many_deliveries",
                    "INSERT INTO updates.deliveries(id, update_id, agent_id, state) "
                    "SELECT gen_random_uuid(), $1::uuid, 'bulk-' || g, "
                    "CASE WHEN g % 10 = 0 THEN 'INSTALLED' ELSE 'OFFERED' END "
                    "FROM generate_series(1, 10049) g"};
                REDFLAG_ASSIGN_OR_RETURN(PgResult u, c.Exec(kUpdateOf, {first}));
                update = u.Text(0, 0);
                return c.Exec(kMany, {update}).status();
              })
              .ok());
  v1::ListDeliveriesRequest filter;
  filter.set_update_id(update);
  std::set<std::string> seen;
  std::string after;
  std::map<std::string, int64_t> counts;
  for (;;) {
    auto page = store.Deliveries(filter, after, 1000);
    REQUIRE(page.ok());
    counts = page->counts;
    for (const auto& d : page->rows) CHECK(seen.insert(d.delivery_id()).second);
    if (page->rows.size() < 1000) break;
    after = page->rows.back().delivery_id();
  }
  CHECK(seen.size() == 10050);
  CHECK(counts == std::map<std::string, int64_t>{{"INSTALLED", 1004}, {"OFFERED", 9046}});
}

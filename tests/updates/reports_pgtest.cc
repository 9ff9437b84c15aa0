// Delivery reports against a real PostgreSQL: retried, repeated and overtaken reports
// leave the rollout status exactly as the agent's last real step, and say so.
#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "common/encoding.h"
#include "services/updates/schema.h"
#include "services/updates/store.h"
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

}  // namespace

TEST_CASE("delivery reports are idempotent and never move a delivery backwards",
          "[updates][reports][pg]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(2);
  REQUIRE(updates::MigrateUpdatesSchema(*pool).ok());
  updates::UpdateStore store(*pool);
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
  auto rows = store.Deliveries(filter);
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].state() == v1::INSTALLED);
}

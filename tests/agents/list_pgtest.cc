// The registry's SQL judges versions exactly as the C++ Version does: agents.semver_cmp is
// what the compliance filter and count use in the database, and a difference would list an
// agent as compliant that the service reports as not (or the reverse).
#include <catch2/catch.hpp>

#include "common/crypto.h"
#include "common/encoding.h"
#include "common/version.h"
#include "services/agents/store.h"
#include "tests/support/test_env.h"

using namespace redflag;

TEST_CASE("agents.semver_cmp agrees with Version::Compare on every pair", "[pg][agents][version]") {
  auto pool = redflag::testing::TestPool(1);
  REQUIRE(agents::AgentStore(*pool).Migrate().ok());
  const std::vector<std::string> versions = {"0.1.0",
                                             "0.1.22",
                                             "0.1.22-rc.1",
                                             "0.1.22-rc.2",
                                             "0.1.22-rc.10",
                                             "0.1.22-alpha",
                                             "0.1.22-alpha.1",
                                             "0.1.22-alpha.beta",
                                             "0.1.22-1",
                                             "0.1.22-beta.11",
                                             "0.1.22-Beta",
                                             "v1.0.0",
                                             "1.0.0+build.5",
                                             "1.0.0-0.3.7",
                                             "1.0.0-x.7.z.92",
                                             "1.0.0-x-y",
                                             "10.0.0",
                                             "2.0.0",
                                             "1.10.0",
                                             "1.9.0",
                                             "18446744073709551615.0.0",
                                             "18446744073709551616.0.0",
                                             "1.0.0-99999999999999999999",
                                             "1.0.0-0",
                                             "latest",
                                             "1.2",
                                             "01.2.3",
                                             "1.2.3-",
                                             "1.2.3-a..b",
                                             "1.2.3-a_b",
                                             "",
                                             "1.2.3.4",
                                             "V1.2.3"};
  static constexpr Statement kCmp{"test_semver_cmp", "SELECT agents.semver_cmp($1, $2)"};
  int compared = 0;
  REQUIRE(pool->WithConnection([&](PgConnection& c) -> absl::Status {
                for (const auto& a : versions) {
                  for (const auto& b : versions) {
                    absl::StatusOr<PgResult> r = c.Exec(kCmp, {a, b});
                    if (!r.ok()) return r.status();
                    absl::StatusOr<Version> va = Version::Parse(a), vb = Version::Parse(b);
                    INFO(a << " vs " << b);
                    if (!va.ok() || !vb.ok()) {
                      CHECK(r->IsNull(0, 0));
                    } else {
                      REQUIRE_FALSE(r->IsNull(0, 0));
                      CHECK(r->Int(0, 0) == va->Compare(*vb));
                      ++compared;
                    }
                  }
                }
                return absl::OkStatus();
              })
              .ok());
  CHECK(compared > 400);
}

TEST_CASE("agents owed instructions are found in one statement for a whole batch",
          "[pg][agents][resync]") {
  auto pool = redflag::testing::TestPool(1);
  agents::AgentStore store(*pool);
  REQUIRE(store.Migrate().ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    agents::NewAgent a{HexEncode(RandomBytes(32)), "owed-" + std::to_string(i), "linux-x86_64",
                       "1.0.0", RandomUuid()};
    absl::StatusOr<agents::AgentRow> row = store.Create(a);
    REQUIRE(row.ok());
    ids.push_back(row->id);
  }
  auto challenge = [] {
    v1::Instruction in;
    in.mutable_verify()->set_challenge(RandomUuid());
    return in;
  };
  REQUIRE(store.QueueInstruction(ids[0], challenge()).ok());  // owed
  REQUIRE(store.QueueInstruction(ids[1], challenge()).ok());  // acknowledged below
  absl::StatusOr<std::vector<v1::Instruction>> b = store.PendingInstructions(ids[1]);
  REQUIRE(b.ok());
  REQUIRE(b->size() == 1);
  REQUIRE(store.AckInstruction(ids[1], (*b)[0].instruction_id(), true, "").ok());

  // A full batch: the three, and 997 agents nobody registered.
  std::vector<std::string> batch = ids;
  while (batch.size() < 1000) batch.push_back(RandomUuid());
  absl::StatusOr<std::vector<std::string>> owed = store.AgentsOwed(batch);
  REQUIRE(owed.ok());
  CHECK(*owed == std::vector<std::string>{ids[0]});
  absl::StatusOr<std::vector<std::string>> none = store.AgentsOwed({ids[1], ids[2]});
  REQUIRE(none.ok());
  CHECK(none->empty());
  CHECK(store.AgentsOwed({}).value().empty());
}

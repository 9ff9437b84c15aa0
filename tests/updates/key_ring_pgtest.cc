// The key ring is served from memory: one database read for any number of uses, refreshed
// when a key event says the ring changed (on this replica or another), and a grace period
// that ends is applied without a read.
#include <catch2/catch.hpp>
#include <thread>

#include "common/crypto.h"
#include "common/encoding.h"
#include "services/updates/key_ring.h"
#include "services/updates/schema.h"
#include "tests/support/test_env.h"

using namespace redflag;

namespace {

const v1::SigningKey* Find(const std::vector<v1::SigningKey>& keys, const std::string& id) {
  for (const auto& k : keys) {
    if (k.key_id() == id) return &k;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("the key ring is read once, refreshed on invalidation, and expires grace in memory",
          "[updates][keys][pg]") {
  REQUIRE(InitCrypto().ok());
  auto pool = redflag::testing::TestPool(2);
  REQUIRE(updates::MigrateUpdatesSchema(*pool).ok());
  // Two keys of another replica's making (the ring under test is never activated, so the
  // shared primary is left alone): one accepted for an hour, one for two seconds.
  const std::string lasting = HexEncode(RandomBytes(8)), brief = HexEncode(RandomBytes(8));
  auto exec = [&](const std::string& name, const char* sql, const Params& p) {
    Statement st{name.c_str(), sql};
    REQUIRE(pool->WithConnection([&](PgConnection& c) { return c.Exec(st, p).status(); }).ok());
  };
  static constexpr char kInsert[] =
      "INSERT INTO updates.signing_keys(key_id, public_key, state, retire_after) "
      "VALUES ($1, $2, 'accepted', now() + ($3::bigint * interval '1 second'))";
  exec("test_key_insert", kInsert, {lasting, HexEncode(RandomBytes(32)), "3600"});
  exec("test_key_insert", kInsert, {brief, HexEncode(RandomBytes(32)), "2"});

  updates::KeyRing ring(*pool, *SigningKey::FromSeed(RandomBytes(32)));
  auto keys = ring.VerifyingAndRevokedKeys();
  REQUIRE(keys.ok());
  REQUIRE(Find(*keys, lasting) != nullptr);
  REQUIRE(Find(*keys, brief) != nullptr);
  for (int i = 0; i < 100; ++i) REQUIRE(ring.VerifyingAndRevokedKeys().ok());
  CHECK(ring.loads() == 1);

  // Another replica revokes a key: unseen until the event arrives...
  exec("test_key_revoke", "UPDATE updates.signing_keys SET state = 'revoked' WHERE key_id = $1",
       {lasting});
  CHECK(Find(*ring.VerifyingAndRevokedKeys(), lasting)->state() == v1::SigningKey::ACCEPTED);
  // ...and seen at once after it.
  ring.Invalidate();
  CHECK(Find(*ring.VerifyingAndRevokedKeys(), lasting)->state() == v1::SigningKey::REVOKED);
  CHECK(ring.loads() == 2);

  // The brief key's grace ends: it stops verifying without another read.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK(Find(*ring.VerifyingAndRevokedKeys(), brief) == nullptr);
  CHECK(ring.loads() == 2);
  exec("test_key_delete", "DELETE FROM updates.signing_keys WHERE key_id IN ($1, $2)",
       {lasting, brief});
}

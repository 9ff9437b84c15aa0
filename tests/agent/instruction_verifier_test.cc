#include "agent/instruction_verifier.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "common/crypto.h"

using namespace redflag;
using namespace redflag::agent;

namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

struct Fixture {
  SigningKey key = *SigningKey::FromSeed(std::string(32, 'p'));
  SigningKey rogue = *SigningKey::FromSeed(std::string(32, 'r'));
  v1::AgentState state;

  Fixture() {
    REQUIRE(InitCrypto().ok());
    state.set_agent_id("agent-1");
    v1::SigningKey* k = state.add_pinned_keys();
    k->set_key_id(key.KeyId());
    k->set_public_key(key.PublicKey());
  }

  v1::SignedEnvelope Sign(const SigningKey& by, const std::string& agent = "agent-1",
                          absl::Time issued = kNow, const std::string& nonce = "n-1",
                          const std::string& type = "redflag.v1.Instruction", int valid_for = 0) {
    v1::Instruction in;
    in.set_valid_for_seconds(valid_for);
    in.set_instruction_id("i-1");
    in.set_agent_id(agent);
    in.set_nonce(nonce);
    in.mutable_issued_at()->set_seconds(absl::ToUnixSeconds(issued));
    in.mutable_warning()->set_message("hello");
    return SignEnvelope(by, type, in.SerializeAsString());
  }
};

std::string Why(const absl::StatusOr<v1::Instruction>& r) {
  return std::string(r.status().message());
}

}  // namespace

TEST_CASE("a fresh instruction signed by the pinned key for this agent is accepted",
          "[instructions]") {
  Fixture f;
  auto in = VerifyInstruction(f.Sign(f.key), f.state, kNow);
  REQUIRE(in.ok());
  CHECK(in->warning().message() == "hello");
  CHECK(f.state.seen_nonces_size() == 1);
}

TEST_CASE("instructions are refused for each forgery or replay", "[instructions]") {
  Fixture f;
  SECTION("signed by a key the agent never pinned") {
    CHECK_THAT(Why(VerifyInstruction(f.Sign(f.rogue), f.state, kNow)),
               Catch::Contains("not pinned"));
  }
  SECTION("a flipped byte in the payload") {
    v1::SignedEnvelope env = f.Sign(f.key);
    std::string p = env.payload();
    p[p.size() / 2] ^= 0x01;
    env.set_payload(p);
    CHECK(VerifyInstruction(env, f.state, kNow).status().code() ==
          absl::StatusCode::kPermissionDenied);
  }
  SECTION("a signature made for another message type") {
    v1::SignedEnvelope env = f.Sign(f.key, "agent-1", kNow, "n-1", "redflag.v1.Manifest");
    env.set_payload_type("redflag.v1.Instruction");
    CHECK(VerifyInstruction(env, f.state, kNow).status().code() ==
          absl::StatusCode::kPermissionDenied);
  }
  SECTION("addressed to another agent") {
    CHECK_THAT(Why(VerifyInstruction(f.Sign(f.key, "agent-2"), f.state, kNow)),
               Catch::Contains("another agent"));
  }
  SECTION("stale") {
    CHECK_THAT(
        Why(VerifyInstruction(f.Sign(f.key, "agent-1", kNow - absl::Minutes(6)), f.state, kNow)),
        Catch::Contains("stale"));
  }
  SECTION("from the future") {
    CHECK_THAT(
        Why(VerifyInstruction(f.Sign(f.key, "agent-1", kNow + absl::Minutes(2)), f.state, kNow)),
        Catch::Contains("future"));
  }
  SECTION("replayed") {
    v1::SignedEnvelope env = f.Sign(f.key);
    REQUIRE(VerifyInstruction(env, f.state, kNow).ok());
    CHECK_THAT(Why(VerifyInstruction(env, f.state, kNow + absl::Seconds(5))),
               Catch::Contains("replay"));
  }
}

TEST_CASE("the freshness window is the one the signed instruction carries, within bounds",
          "[instructions]") {
  Fixture f;
  const std::string kType = "redflag.v1.Instruction";
  auto at = [&](absl::Duration age, int valid_for, const std::string& nonce) {
    return VerifyInstruction(f.Sign(f.key, "agent-1", kNow - age, nonce, kType, valid_for), f.state,
                             kNow);
  };
  // Operators widened the window to 10 minutes: 8 minutes old is fresh, 11 is not.
  CHECK(at(absl::Minutes(8), 600, "a").ok());
  CHECK_THAT(Why(at(absl::Minutes(11), 600, "b")), Catch::Contains("600 seconds"));
  // Narrowed to 2 minutes: 3 minutes old is stale although the default would take it.
  CHECK_THAT(Why(at(absl::Minutes(3), 120, "c")), Catch::Contains("stale"));
  CHECK(at(absl::Minutes(3), 0, "d").ok());  // a server that does not carry it: 5 minutes
  // A window beyond 15 minutes (or under 1) is bounded, whoever signed it.
  CHECK_THAT(Why(at(absl::Minutes(16), 86400, "e")), Catch::Contains("900 seconds"));
  CHECK_THAT(Why(at(absl::Seconds(95), 1, "f")), Catch::Contains("60 seconds"));
}

TEST_CASE("a nonce is remembered as long as the widest window could keep it fresh",
          "[instructions]") {
  Fixture f;
  const std::string kType = "redflag.v1.Instruction";
  v1::SignedEnvelope wide = f.Sign(f.key, "agent-1", kNow, "wide", kType, 900);
  REQUIRE(VerifyInstruction(wide, f.state, kNow).ok());
  // Ten minutes on, another instruction (default window) prunes old nonces; replaying the
  // 15-minute instruction must still be refused as a replay, not accepted as new.
  absl::Time later = kNow + absl::Minutes(10);
  REQUIRE(VerifyInstruction(f.Sign(f.key, "agent-1", later, "other"), f.state, later).ok());
  CHECK_THAT(Why(VerifyInstruction(wide, f.state, later + absl::Seconds(1))),
             Catch::Contains("replay"));
}

TEST_CASE("nonces are forgotten only after they could no longer be fresh", "[instructions]") {
  Fixture f;
  REQUIRE(VerifyInstruction(f.Sign(f.key, "agent-1", kNow, "old"), f.state, kNow).ok());
  absl::Time later = kNow + absl::Minutes(16);
  REQUIRE(VerifyInstruction(f.Sign(f.key, "agent-1", later, "new"), f.state, later).ok());
  CHECK(f.state.seen_nonces_size() == 1);
  CHECK(f.state.seen_nonces(0).nonce() == "new");
}

TEST_CASE("applied instruction ids are remembered, most recent 1000", "[instructions]") {
  v1::AgentState state;
  for (int i = 0; i < 1100; ++i) MarkApplied(state, "id-" + std::to_string(i));
  CHECK(state.applied_instruction_ids_size() == 1000);
  CHECK(AlreadyApplied(state, "id-1099"));
  CHECK_FALSE(AlreadyApplied(state, "id-0"));
}

namespace {

v1::SignedEnvelope Announcement(const SigningKey& new_key, const SigningKey* endorser,
                                const std::string& endorsed_id = "") {
  v1::Instruction in;
  in.set_instruction_id("upd-key-x");
  in.set_agent_id("agent-1");
  in.set_nonce(RandomUuid());
  in.mutable_issued_at()->set_seconds(absl::ToUnixSeconds(kNow));
  v1::KeyAnnouncement* a = in.mutable_key_announcement();
  a->mutable_key()->set_key_id(new_key.KeyId());
  a->mutable_key()->set_public_key(new_key.PublicKey());
  if (endorser != nullptr) {
    v1::SigningKey endorsed;
    endorsed.set_key_id(endorsed_id.empty() ? new_key.KeyId() : endorsed_id);
    endorsed.set_public_key(new_key.PublicKey());
    *a->mutable_endorsement() =
        SignEnvelope(*endorser, "redflag.v1.KeyEndorsement", endorsed.SerializeAsString());
  }
  return SignEnvelope(new_key, "redflag.v1.Instruction", in.SerializeAsString());
}

}  // namespace

TEST_CASE("a new key is trusted only through an endorsement by a pinned key",
          "[instructions][rotation]") {
  Fixture f;
  SigningKey next = *SigningKey::FromSeed(std::string(32, 'n'));
  SECTION("endorsed by the pinned key: accepted") {
    auto in = VerifyInstruction(Announcement(next, &f.key), f.state, kNow);
    REQUIRE(in.ok());
    CHECK(in->key_announcement().key().key_id() == next.KeyId());
  }
  SECTION("endorsed by a key that is not pinned: refused") {
    CHECK_THAT(Why(VerifyInstruction(Announcement(next, &f.rogue), f.state, kNow)),
               Catch::Contains("not pinned"));
  }
  SECTION("no endorsement: refused") {
    CHECK_THAT(Why(VerifyInstruction(Announcement(next, nullptr), f.state, kNow)),
               Catch::Contains("not pinned"));
  }
  SECTION("an endorsement of some other key: refused") {
    CHECK_THAT(Why(VerifyInstruction(Announcement(next, &f.key, f.rogue.KeyId()), f.state, kNow)),
               Catch::Contains("does not name"));
  }
  SECTION("a non-announcement from an unpinned key, even with an endorsement: refused") {
    v1::SignedEnvelope env = Announcement(next, &f.key);
    v1::Instruction in;
    in.ParseFromString(env.payload());
    in.mutable_warning()->set_message("obey me");  // replaces the announcement body
    env = SignEnvelope(next, "redflag.v1.Instruction", in.SerializeAsString());
    CHECK_THAT(Why(VerifyInstruction(env, f.state, kNow)), Catch::Contains("not pinned"));
  }
}

TEST_CASE("a key revocation from a newer pinned key drops the old key for good",
          "[instructions][rotation][revocation]") {
  Fixture f;  // pins f.key (old)
  SigningKey next = *SigningKey::FromSeed(std::string(32, 'n'));
  v1::SigningKey* pinned = f.state.add_pinned_keys();  // pinned after it: newer
  pinned->set_key_id(next.KeyId());
  pinned->set_public_key(next.PublicKey());
  v1::KeyRevocation rev;
  rev.set_key_id(f.key.KeyId());

  SECTION("the old key cannot revoke the newer one (a leaked old key would try)") {
    v1::KeyRevocation attack;
    attack.set_key_id(next.KeyId());
    CHECK_THAT(std::string(ApplyKeyRevocation(f.key.KeyId(), attack, f.state).message()),
               Catch::Contains("may not revoke the newer key"));
    CHECK(f.state.pinned_keys_size() == 2);
    CHECK(f.state.revoked_key_ids_size() == 0);
  }
  SECTION("a key cannot revoke itself") {
    CHECK_FALSE(ApplyKeyRevocation(f.key.KeyId(), rev, f.state).ok());
    CHECK(f.state.pinned_keys_size() == 2);
  }
  SECTION("an unpinned signer cannot revoke") {
    CHECK_FALSE(ApplyKeyRevocation(f.rogue.KeyId(), rev, f.state).ok());
    CHECK(f.state.pinned_keys_size() == 2);
  }
  SECTION("the newer key revokes the old one; then nothing the old key signs is accepted") {
    REQUIRE(ApplyKeyRevocation(next.KeyId(), rev, f.state).ok());
    REQUIRE(f.state.pinned_keys_size() == 1);
    CHECK(f.state.pinned_keys(0).key_id() == next.KeyId());
    CHECK(IsKeyRevoked(f.state, f.key.KeyId()));
    CHECK_THAT(Why(VerifyInstruction(f.Sign(f.key, "agent-1", kNow, "after"), f.state, kNow)),
               Catch::Contains("revoked key"));
    // Nor can the old key vouch for another key, or be announced again by a good key.
    SigningKey third = *SigningKey::FromSeed(std::string(32, 't'));
    CHECK_THAT(Why(VerifyInstruction(Announcement(third, &f.key), f.state, kNow)),
               Catch::Contains("revoked key"));
    CHECK(VerifyInstruction(f.Sign(next, "agent-1", kNow, "fine"), f.state, kNow).ok());
    // Applying it again changes nothing.
    REQUIRE(ApplyKeyRevocation(next.KeyId(), rev, f.state).ok());
    CHECK(f.state.revoked_key_ids_size() == 1);
  }
}

TEST_CASE("an applied offer's outcome is kept to be reported again, the newest 100",
          "[instructions]") {
  v1::AgentState state;
  CHECK(FindOfferOutcome(state, "offer:1") == nullptr);
  for (int i = 0; i < 150; ++i) {
    v1::OfferOutcome o;
    o.set_instruction_id(absl::StrCat("offer:", i));
    o.set_delivery_id(absl::StrCat("delivery-", i));
    o.set_state(i % 2 == 0 ? v1::INSTALLED : v1::FAILED);
    RecordOfferOutcome(state, o);
  }
  CHECK(state.offer_outcomes_size() == 100);
  CHECK(FindOfferOutcome(state, "offer:49") == nullptr);  // the oldest went
  const v1::OfferOutcome* kept = FindOfferOutcome(state, "offer:149");
  REQUIRE(kept != nullptr);
  CHECK(kept->delivery_id() == "delivery-149");
  CHECK(kept->state() == v1::FAILED);
  // Recording the same instruction again replaces its outcome (a self-update confirmed).
  v1::OfferOutcome again;
  again.set_instruction_id("offer:149");
  again.set_delivery_id("delivery-149");
  again.set_state(v1::INSTALLED);
  RecordOfferOutcome(state, again);
  CHECK(state.offer_outcomes_size() == 100);
  CHECK(FindOfferOutcome(state, "offer:149")->state() == v1::INSTALLED);
}

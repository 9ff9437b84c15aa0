// InstructionOutbox: once-per-stream sending, and the fetch rounds (folding, retry, close).
#include "services/gateway/instruction_outbox.h"

#include <catch2/catch.hpp>

using redflag::gateway::InstructionOutbox;
using Action = InstructionOutbox::AfterRound::Action;
using Round = InstructionOutbox::Round;

TEST_CASE("an instruction is sent once per stream until acknowledged", "[outbox]") {
  InstructionOutbox box;
  CHECK(box.MarkSent("upd-offer-1"));
  CHECK_FALSE(box.MarkSent("upd-offer-1"));  // the fan-out and the per-stream fetch both found it
  CHECK(box.MarkSent("ins-2"));
  CHECK(box.unacknowledged() == 2);
  box.Acknowledged("upd-offer-1");
  CHECK(box.unacknowledged() == 1);
  CHECK(box.MarkSent("upd-offer-1"));  // listed again after the ack: the backend still owes it
  box.Unsent("ins-2");                 // signing failed: the next round sends it
  CHECK(box.MarkSent("ins-2"));
}

TEST_CASE("a round ends after its last step, including steps that joined it", "[outbox]") {
  InstructionOutbox box;
  REQUIRE(box.StartRound(2));
  CHECK(box.round() == Round::kFetching);
  box.AddSteps(3);  // three instructions to sign, found by the first fetch
  CHECK_FALSE(box.StepDone(true).has_value());
  for (int i = 0; i < 3; ++i) CHECK_FALSE(box.StepDone(true).has_value());
  auto after = box.StepDone(true);
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kNothing);
  CHECK(box.round() == Round::kIdle);
}

TEST_CASE("requests during a round fold into exactly one more round", "[outbox]") {
  InstructionOutbox box;
  REQUIRE(box.StartRound(1));
  for (int i = 0; i < 50; ++i) CHECK_FALSE(box.StartRound(1));  // an event storm
  CHECK(box.round() == Round::kFetchingAgain);
  auto after = box.StepDone(true);
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kFetchAgain);
  REQUIRE(box.StartRound(1));  // the one more round
  after = box.StepDone(true);
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kNothing);  // and no third
}

TEST_CASE("a failed round is retried with a growing, capped backoff that resets on success",
          "[outbox]") {
  InstructionOutbox box;
  absl::Duration previous_cap = absl::ZeroDuration();
  for (int failure = 1; failure <= 10; ++failure) {
    REQUIRE(box.StartRound(2));
    CHECK_FALSE(box.StepDone(true).has_value());
    auto after = box.StepDone(false);  // one of the two fetches failed
    REQUIRE(after.has_value());
    REQUIRE(after->action == Action::kRetry);
    CHECK(box.consecutive_failures() == failure);
    // 500 ms * 2^(failure-1), capped at 30 s, jittered into [50 %, 100 %].
    absl::Duration cap =
        std::min(absl::Milliseconds(500) * (1 << (failure - 1)), absl::Seconds(30));
    CHECK(after->retry_in >= cap / 2);
    CHECK(after->retry_in <= cap);
    CHECK(cap >= previous_cap);
    previous_cap = cap;
  }
  CHECK(previous_cap == absl::Seconds(30));
  REQUIRE(box.StartRound(1));
  auto after = box.StepDone(true);
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kNothing);
  CHECK(box.consecutive_failures() == 0);
}

TEST_CASE("close-after-delivery closes when the round ends, after any folded round", "[outbox]") {
  InstructionOutbox box;
  REQUIRE(box.StartRound(1));
  CHECK_FALSE(box.StartRound(1));  // an event arrived meanwhile
  box.CloseAfterDelivery(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "agent is blocked"));
  auto after = box.StepDone(true);
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kFetchAgain);  // the folded round delivers first
  REQUIRE(box.StartRound(1));
  after = box.StepDone(false);  // even a failed round ends in the close: the agent is blocked
  REQUIRE(after.has_value());
  CHECK(after->action == Action::kClose);
  CHECK(after->close_status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(after->close_status.error_message() == "agent is blocked");
}

TEST_CASE("a step after the round ended changes nothing", "[outbox]") {
  InstructionOutbox box;
  CHECK_FALSE(box.StepDone(true).has_value());  // no round: ignored
  CHECK(box.round() == Round::kIdle);
  CHECK(box.StartRound(1));
}

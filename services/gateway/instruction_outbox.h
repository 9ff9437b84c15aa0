// What one agent stream owes its agent, apart from the protocol: which instructions were sent
// on the stream and not yet acknowledged (each goes out once per stream; the next stream sends
// it again until the agent acknowledges it), and the fetch rounds that look for pending ones.
//
// Rounds: one runs at a time. A round is a number of steps (backend fetches, one signing per
// instruction found); asking for a round while one runs folds the request into one more round
// after it (any number of requests, one more round). A round with a failed step is retried
// after a capped, jittered backoff (500 ms doubling to 30 s) that resets once a round
// succeeds. A close asked "after delivery" happens when the next round ends.
//
// No gRPC calls and no I/O: the stream acts on what the outbox returns. Thread-safe; never
// calls out while holding its mutex.
#pragma once

#include <grpcpp/support/status.h>

#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"

namespace redflag::gateway {

class InstructionOutbox {
 public:
  enum class Round { kIdle, kFetching, kFetchingAgain };

  // What the stream does once a round ended.
  struct AfterRound {
    enum class Action { kNothing, kFetchAgain, kClose, kRetry };
    Action action = Action::kNothing;
    absl::Duration retry_in;    // kRetry: start a round after this long
    grpc::Status close_status;  // kClose: end the stream with this, after what is queued
  };

  // Sending: true the first time `id` is sent on this stream (the caller sends it), false
  // when it was sent already and not acknowledged since.
  bool MarkSent(const std::string& id);
  // The agent acknowledged `id` (applied or refused): another round may send it again only
  // if a backend still lists it.
  void Acknowledged(const std::string& id);
  // Sending `id` failed (say, signing it): the next round sends it.
  void Unsent(const std::string& id);
  size_t unacknowledged() const;

  // True: the caller starts a round of `steps` steps now. False: a round is running, and one
  // more will follow it (StepDone says kFetchAgain).
  bool StartRound(int steps);
  // `n` more steps joined the running round.
  void AddSteps(int n);
  // One step of the running round ended; `ok` false marks the round failed. After the
  // round's last step, what to do next; before it, nullopt.
  std::optional<AfterRound> StepDone(bool ok);
  // Once the next round ends (or the running one), the stream closes with `status`.
  void CloseAfterDelivery(const grpc::Status& status);

  Round round() const;
  int consecutive_failures() const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_set<std::string> sent_;
  Round round_ = Round::kIdle;
  int outstanding_ = 0;
  bool round_failed_ = false;
  int failures_ = 0;  // consecutive failed rounds
  std::optional<grpc::Status> close_after_;
};

}  // namespace redflag::gateway

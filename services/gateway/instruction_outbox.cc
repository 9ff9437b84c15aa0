#include "services/gateway/instruction_outbox.h"

#include "services/gateway/outcome_forwarder.h"

namespace redflag::gateway {

bool InstructionOutbox::MarkSent(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_.insert(id).second;
}

void InstructionOutbox::Acknowledged(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sent_.erase(id);
}

void InstructionOutbox::Unsent(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sent_.erase(id);
}

size_t InstructionOutbox::unacknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_.size();
}

bool InstructionOutbox::StartRound(int steps) {
  std::lock_guard<std::mutex> lock(mu_);
  if (round_ != Round::kIdle) {
    round_ = Round::kFetchingAgain;
    return false;
  }
  round_ = Round::kFetching;
  outstanding_ = steps;
  return true;
}

void InstructionOutbox::AddSteps(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  outstanding_ += n;
}

std::optional<InstructionOutbox::AfterRound> InstructionOutbox::StepDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ok) round_failed_ = true;
  if (round_ == Round::kIdle || --outstanding_ > 0) return std::nullopt;
  const bool again = round_ == Round::kFetchingAgain;
  round_ = Round::kIdle;
  failures_ = round_failed_ ? failures_ + 1 : 0;
  round_failed_ = false;
  AfterRound next;
  if (again) {
    next.action = AfterRound::Action::kFetchAgain;
  } else if (close_after_) {
    next.action = AfterRound::Action::kClose;
    next.close_status = *close_after_;
  } else if (failures_ > 0) {
    next.action = AfterRound::Action::kRetry;
    next.retry_in = RetryDelay(failures_ - 1, absl::Milliseconds(500), absl::Seconds(30));
  }
  return next;
}

void InstructionOutbox::CloseAfterDelivery(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  close_after_ = status;
}

InstructionOutbox::Round InstructionOutbox::round() const {
  std::lock_guard<std::mutex> lock(mu_);
  return round_;
}

int InstructionOutbox::consecutive_failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}

}  // namespace redflag::gateway

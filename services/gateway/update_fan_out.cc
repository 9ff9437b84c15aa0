#include "services/gateway/update_fan_out.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "services/gateway/agent_stream.h"
#include "services/gateway/outcome_forwarder.h"

namespace redflag::gateway {

struct UpdateFanOut::Batch {
  std::vector<AgentStream*> streams;  // each with a reference, released when the batch ends
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::PendingInstructionsBatchRequest req;
  v1::PendingInstructionsBatchResponse resp;
  int attempt = 0;
  bool first_attempt_done = false;

  ~Batch() {
    for (AgentStream* s : streams) s->Unref();
  }
};

UpdateFanOut::UpdateFanOut(StreamRegistry& registry, Backends& backends, TimerQueue& timers,
                           size_t batch_size)
    : registry_(registry), backends_(backends), timers_(timers), batch_size_(batch_size) {}

void UpdateFanOut::Trigger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ != State::kIdle) {
      state_ = State::kRunningAgain;  // folded into one more run after this one
      return;
    }
    state_ = State::kRunning;
  }
  Run();
}

void UpdateFanOut::Run() {
  std::vector<std::shared_ptr<Batch>> batches;
  registry_.ForEach([&](AgentStream& s) {
    v1::PendingInstructionsRequest req;
    if (!s.UpdateRequest(&req)) return;  // not authorised yet, or ending
    if (batches.empty() || batches.back()->streams.size() >= batch_size_) {
      batches.push_back(std::make_shared<Batch>());
    }
    s.Ref();
    batches.back()->streams.push_back(&s);
    *batches.back()->req.add_agents() = std::move(req);
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_batches_ = batches.size();
  }
  if (batches.empty()) {
    BatchFinished();
    return;
  }
  for (auto& b : batches) Send(b);
}

void UpdateFanOut::Send(std::shared_ptr<Batch> batch) {
  batch->ctx = BackendContext();
  batch->resp.Clear();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++batches_sent_;
  }
  GatedCall(
      *backends_.updates_gate,
      [this, batch](Completion cb) {
        backends_.updates->async()->PendingInstructionsBatch(batch->ctx.get(), &batch->req,
                                                             &batch->resp, std::move(cb));
      },
      [this, batch](const grpc::Status& s) {
        if (s.ok()) {
          Delivered(batch);
        } else {
          // Retried until it succeeds or no stream of it is open; the next event's run does
          // not wait for it (what it sends twice, the streams drop).
          bool any_open = false;
          for (AgentStream* st : batch->streams) any_open = any_open || !st->Ended();
          if (any_open) {
            absl::Duration delay =
                RetryDelay(batch->attempt++, absl::Milliseconds(250), absl::Seconds(15));
            LogWarn(absl::StrCat("update instructions for ", batch->streams.size(),
                                 " streams not fetched (", s.error_message(), "); retrying in ",
                                 absl::FormatDuration(delay)));
            timers_.RunAfter(delay, [this, batch](bool fired) {
              if (fired) Send(batch);  // else the gateway is stopping: the batch is released
            });
          }
        }
        if (!batch->first_attempt_done) {
          batch->first_attempt_done = true;
          BatchFinished();
        }
      });
}

void UpdateFanOut::Delivered(const std::shared_ptr<Batch>& batch) {
  // The reply lists agents in the request's order; match by id all the same.
  for (size_t i = 0;
       i < batch->streams.size() && i < static_cast<size_t>(batch->resp.agents_size()); ++i) {
    v1::AgentInstructions* a = batch->resp.mutable_agents(static_cast<int>(i));
    if (a->agent_id() != batch->req.agents(static_cast<int>(i)).agent_id()) continue;
    batch->streams[i]->DeliverUpdateInstructions(a->mutable_instructions());
  }
}

void UpdateFanOut::BatchFinished() {
  bool again = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (running_batches_ > 0) --running_batches_;
    if (running_batches_ > 0) return;
    again = state_ == State::kRunningAgain;
    state_ = again ? State::kRunning : State::kIdle;
  }
  if (again) Run();
}

int64_t UpdateFanOut::batches_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_sent_;
}

}  // namespace redflag::gateway

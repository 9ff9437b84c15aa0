#include "services/gateway/fan_out.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "services/gateway/agent_stream.h"
#include "services/gateway/outcome_forwarder.h"

namespace redflag::gateway {

bool UpdateInstructions::Add(AgentStream& s, Request* req) {
  v1::PendingInstructionsRequest one;
  if (!s.UpdateRequest(&one)) return false;
  *req->add_agents() = std::move(one);
  return true;
}

BackendGate& UpdateInstructions::Gate(Backends& b) { return *b.updates_gate; }

void UpdateInstructions::Call(Backends& b, grpc::ClientContext* ctx, const Request* req,
                              Response* resp, Completion done) {
  b.updates->async()->PendingInstructionsBatch(ctx, req, resp, std::move(done));
}

void UpdateInstructions::Deliver(const std::vector<AgentStream*>& streams, const Request& req,
                                 Response* resp) {
  // The reply lists agents in the request's order; match by id all the same.
  for (size_t i = 0; i < streams.size() && i < static_cast<size_t>(resp->agents_size()); ++i) {
    v1::AgentInstructions* a = resp->mutable_agents(static_cast<int>(i));
    if (a->agent_id() != req.agents(static_cast<int>(i)).agent_id()) continue;
    streams[i]->DeliverUpdateInstructions(a->mutable_instructions());
  }
}

bool AgentsOwed::Add(AgentStream& s, Request* req) {
  std::string id;
  if (!s.OpenAgentId(&id)) return false;
  req->add_agent_ids(std::move(id));
  return true;
}

BackendGate& AgentsOwed::Gate(Backends& b) { return *b.agents_gate; }

void AgentsOwed::Call(Backends& b, grpc::ClientContext* ctx, const Request* req, Response* resp,
                      Completion done) {
  b.agents->async()->AgentsOwedInstructions(ctx, req, resp, std::move(done));
}

void AgentsOwed::Deliver(const std::vector<AgentStream*>& streams, const Request& req,
                         Response* resp) {
  absl::flat_hash_set<std::string> owed(resp->agent_ids().begin(), resp->agent_ids().end());
  for (size_t i = 0; i < streams.size(); ++i) {
    if (owed.contains(req.agent_ids(static_cast<int>(i)))) streams[i]->DeliverPending();
  }
}

template <typename Kind>
struct FanOut<Kind>::Batch {
  std::vector<AgentStream*> streams;  // each with a reference, released when the batch ends
  std::unique_ptr<grpc::ClientContext> ctx;
  typename Kind::Request req;
  typename Kind::Response resp;
  int attempt = 0;
  bool first_attempt_done = false;

  ~Batch() {
    for (AgentStream* s : streams) s->Unref();
  }
};

template <typename Kind>
FanOut<Kind>::FanOut(StreamRegistry& registry, Backends& backends, TimerQueue& timers,
                     prometheus::Counter* calls, size_t batch_size)
    : registry_(registry),
      backends_(backends),
      timers_(timers),
      calls_(calls),
      batch_size_(batch_size) {}

template <typename Kind>
void FanOut<Kind>::Trigger() {
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

template <typename Kind>
void FanOut<Kind>::Run() {
  std::vector<std::shared_ptr<Batch>> batches;
  std::shared_ptr<Batch> next = std::make_shared<Batch>();
  registry_.ForEach([&](AgentStream& s) {
    if (!Kind::Add(s, &next->req)) return;  // not authorised yet, or ending
    s.Ref();
    next->streams.push_back(&s);
    if (next->streams.size() >= batch_size_) {
      batches.push_back(std::move(next));
      next = std::make_shared<Batch>();
    }
  });
  if (!next->streams.empty()) batches.push_back(std::move(next));
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

template <typename Kind>
void FanOut<Kind>::Send(std::shared_ptr<Batch> batch) {
  batch->ctx = BackendContext();
  batch->resp.Clear();
  if (calls_ != nullptr) calls_->Increment();
  GatedCall(
      Kind::Gate(backends_),
      [this, batch](Completion cb) {
        Kind::Call(backends_, batch->ctx.get(), &batch->req, &batch->resp, std::move(cb));
      },
      [this, batch](const grpc::Status& s) {
        if (s.ok()) {
          Kind::Deliver(batch->streams, batch->req, &batch->resp);
        } else {
          // Retried until it succeeds or no stream of it is open; the next event's run does
          // not wait for it (what it sends twice, the streams drop).
          bool any_open = false;
          for (AgentStream* st : batch->streams) any_open = any_open || !st->Ended();
          if (any_open) {
            absl::Duration delay =
                RetryDelay(batch->attempt++, absl::Milliseconds(250), absl::Seconds(15));
            LogWarn(absl::StrCat(Kind::kFeed, " fan-out for ", batch->streams.size(),
                                 " streams failed (", s.error_message(), "); retrying in ",
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

template <typename Kind>
void FanOut<Kind>::BatchFinished() {
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

template class FanOut<UpdateInstructions>;
template class FanOut<AgentsOwed>;

}  // namespace redflag::gateway

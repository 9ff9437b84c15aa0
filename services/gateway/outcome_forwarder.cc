#include "services/gateway/outcome_forwarder.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"

namespace redflag::gateway {
namespace {

// One backend call's buffers, kept alive until its completion.
template <typename Req, typename Resp>
struct Call {
  std::unique_ptr<grpc::ClientContext> ctx;
  Req req;
  Resp resp;
};

const char* Describe(const OutcomeForwarder::Outcome& o) {
  switch (o.index()) {
    case 0:
      return "instruction ack";
    case 1:
      return "update instruction ack";
    case 2:
      return "delivery report";
    default:
      return "verify result";
  }
}

}  // namespace

absl::Duration RetryDelay(int attempt, absl::Duration base, absl::Duration cap) {
  absl::Duration d = std::min(base * (1 << std::clamp(attempt, 0, 16)), cap);
  thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return d * jitter(rng);
}

bool TransientFailure(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED || code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::INTERNAL;
}

OutcomeForwarder::OutcomeForwarder(Backends& backends, TimerQueue& timers, OutcomeMetrics& metrics,
                                   Actor agent)
    : backends_(backends), timers_(timers), metrics_(metrics), agent_(std::move(agent)) {}

OutcomeForwarder::~OutcomeForwarder() {
  // Only the gateway's shutdown destroys a forwarder with work left (see header).
  if (!queue_.empty()) {
    LogWarn(absl::StrCat("dropping ", queue_.size(), " unsent outcome(s) of agent ", agent_.subject,
                         " at shutdown"));
    metrics_.dropped.Increment(static_cast<double>(queue_.size()));
    metrics_.pending.Decrement(static_cast<double>(queue_.size()));
  }
}

bool OutcomeForwarder::Push(Outcome outcome) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      metrics_.dropped.Increment();
      LogWarn(absl::StrCat("outcome queue of agent ", agent_.subject, " is full; dropped a ",
                           Describe(outcome)));
      return false;
    }
    queue_.push_back(std::move(outcome));
    metrics_.pending.Increment();
    if (sending_) return true;
    sending_ = true;
    attempt_ = 0;
    first_attempt_ = absl::Now();
  }
  SendFront();
  return true;
}

size_t OutcomeForwarder::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void OutcomeForwarder::SendFront() {
  Outcome front;
  {
    std::lock_guard<std::mutex> lock(mu_);
    front = queue_.front();  // stays queued until recorded
  }
  auto self = shared_from_this();
  std::function<void(const grpc::Status&)> done = [self](const grpc::Status& s) {
    self->OnResult(s);
  };
  std::visit(
      [&](auto& req) {
        using Req = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<Req, v1::AckInstructionRequest>) {
          Send<v1::Agent>(*backends_.agents_gate, req, done,
                          [this](auto... a) { backends_.agents->async()->AckInstruction(a...); });
        } else if constexpr (std::is_same_v<Req, v1::UpdateInstructionAck>) {
          Send<v1::Empty>(*backends_.updates_gate, req, done,
                          [this](auto... a) { backends_.updates->async()->AckInstruction(a...); });
        } else if constexpr (std::is_same_v<Req, v1::ReportDeliveryRequest>) {
          Send<v1::Delivery>(*backends_.updates_gate, req, done, [this](auto... a) {
            backends_.updates->async()->ReportDelivery(a...);
          });
        } else {
          Send<v1::Agent>(*backends_.agents_gate, req, done,
                          [this](auto... a) { backends_.agents->async()->RecordVerify(a...); });
        }
      },
      front);
}

template <typename Resp, typename Req, typename Issue>
void OutcomeForwarder::Send(BackendGate& gate, const Req& req,
                            std::function<void(const grpc::Status&)> done, Issue issue) {
  auto* c = new Call<Req, Resp>{BackendContext(agent_, absl::Seconds(10)), req, {}};
  GatedCall(
      gate, [c, issue](Completion cb) { issue(c->ctx.get(), &c->req, &c->resp, std::move(cb)); },
      [c, done = std::move(done)](const grpc::Status& s) {
        delete c;
        done(s);
      });
}

void OutcomeForwarder::OnResult(const grpc::Status& s) {
  bool retry = false;
  bool more = false;
  absl::Duration delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!s.ok() && TransientFailure(s.error_code()) &&
        absl::Now() - first_attempt_ < kGiveUpAfter) {
      retry = true;
      delay = RetryDelay(attempt_++, absl::Milliseconds(250), kMaxRetryDelay);
      metrics_.retried.Increment();
    } else {
      if (s.ok()) {
        metrics_.recorded.Increment();
      } else {
        metrics_.dropped.Increment();
        LogWarn(absl::StrCat(Describe(queue_.front()), " of agent ", agent_.subject,
                             " not recorded: ", s.error_message()));
      }
      queue_.pop_front();
      metrics_.pending.Decrement();
      more = !queue_.empty();
      sending_ = more;
      attempt_ = 0;
      first_attempt_ = absl::Now();
    }
  }
  if (retry) {
    auto self = shared_from_this();
    timers_.RunAfter(delay, [self](bool fired) {
      if (fired) {
        self->SendFront();
        return;
      }
      std::lock_guard<std::mutex> lock(self->mu_);
      self->sending_ = false;  // the gateway is stopping; the destructor counts the rest
    });
    return;
  }
  if (more) SendFront();
}

}  // namespace redflag::gateway

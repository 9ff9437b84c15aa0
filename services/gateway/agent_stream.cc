#include "services/gateway/agent_stream.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/actor.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/status.h"
#include "common/validate.h"
#include "common/version.h"

namespace redflag::gateway {
namespace {

void Now(google::protobuf::Timestamp* ts) { ts->set_seconds(absl::ToUnixSeconds(absl::Now())); }

// The backend's form of an agent's ack (the agents and updates services take the same fields).
template <typename AckRequest>
AckRequest BackendAck(const std::string& agent_id, const v1::InstructionAck& ack) {
  AckRequest req;
  req.set_agent_id(agent_id);
  req.set_instruction_id(ack.instruction_id());
  req.set_applied(ack.applied());
  req.set_error(StorableText(ack.error(), 500));
  return req;
}

}  // namespace

AgentStream::AgentStream(grpc::CallbackServerContext* ctx, StreamDeps deps)
    : ctx_(ctx), deps_(deps), peer_(ctx->peer()) {
  deps_.connected.Increment();
  absl::StatusOr<JwtClaims> claims = deps_.authn.Agent(*ctx);
  machine_id_ = Metadata(*ctx, "x-machine-id");
  if (!claims.ok()) {
    End(ToGrpcStatus(claims.status()));
    return;
  }
  if (absl::Status s = ValidateMachineId("x-machine-id", machine_id_); !s.ok()) {
    End(ToGrpcStatus(s));
    return;
  }
  claims_ = *std::move(claims);
  if (!deps_.registry.Admit(claims_.sub)) {
    End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "too many streams open for this agent; an agent needs only one"));
    return;
  }
  admitted_ = true;
  ReadNext();
}

void AgentStream::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

void AgentStream::ReadNext() {
  // Under the lock: once End() has begun, no new operation may start (Finish may follow).
  std::lock_guard<std::mutex> lock(mu_);
  if (EndingLocked()) return;
  StartRead(&incoming_);
}

void AgentStream::OnReadDone(bool ok) {
  if (!ok) {
    End(grpc::Status::OK);  // the agent closed its side or the stream broke
    return;
  }
  Phase phase;
  bool authorised;
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase = phase_;
    authorised = outcomes_ != nullptr;
  }
  if (phase == Phase::kHello) {
    if (!incoming_.has_hello()) {
      End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                       "the first message on a stream must be hello"));
      return;
    }
    HandleHello(incoming_.hello());  // reads resume once the agent is authorised
    return;
  }
  // A read completing after End(): still the agent's word if it was authorised (an ack of
  // the block notice a drain sent, say); nothing more is read.
  if (!authorised) return;
  switch (incoming_.body_case()) {
    case v1::AgentMessage::kCheckIn:
      HandleCheckIn(incoming_.seq(), incoming_.check_in());
      break;
    case v1::AgentMessage::kAck:
      HandleAck(incoming_.ack());
      break;
    case v1::AgentMessage::kVerifyResponse:
      HandleVerifyResponse(incoming_.verify_response());
      break;
    case v1::AgentMessage::kDeliveryReport:
      HandleDeliveryReport(incoming_.delivery_report());
      break;
    case v1::AgentMessage::kHello:
      End(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "hello may be sent only once"));
      return;
    case v1::AgentMessage::BODY_NOT_SET:
      End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty agent message"));
      return;
  }
  ReadNext();
}

void AgentStream::HandleHello(const v1::Hello& hello) {
  if (hello.agent_id() != claims_.sub) {
    deps_.authn.CountFailure(*ctx_, "agent_id_mismatch", claims_.sub);
    End(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                     "hello.agent_id does not match the token's agent"));
    return;
  }
  if (hello.machine_id() != machine_id_) {
    End(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                     "hello.machine_id does not match x-machine-id"));
    return;
  }
  // The version decides the minimum-version and downgrade checks: it must be there.
  if (absl::StatusOr<Version> v = Version::Parse(hello.version()); !v.ok()) {
    End(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("hello.version must be MAJOR.MINOR.PATCH: ", v.status().message())));
    return;
  }
  // Channels name the offers this agent is matched with (and are file names on agents).
  if (!hello.channel().empty()) {
    if (absl::Status s = ValidateSafeName("hello.channel", hello.channel(), 32); !s.ok()) {
      End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message())));
      return;
    }
  }
  version_ = hello.version();
  channel_ = hello.channel().empty() ? "stable" : hello.channel();
  for (int i = 0; i < hello.pinned_key_ids_size() && i < 16; ++i) {
    pinned_key_ids_.push_back(hello.pinned_key_ids(i));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ != Phase::kHello) return;  // ended meanwhile (cancelled)
    phase_ = Phase::kAuthorizing;
  }
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = BackendContext();
    v1::AuthorizeAgentRequest req;
    v1::Agent resp;
  };
  auto* call = new Call;
  call->req.set_agent_id(claims_.sub);
  call->req.set_machine_id(machine_id_);
  call->req.set_version(version_);
  call->req.set_source(peer_);
  call->req.set_announce_stream(true);
  Ref();
  GatedCall(
      *deps_.backends.agents_gate,
      [this, call](Completion cb) {
        deps_.backends.agents->async()->AuthorizeAgent(call->ctx.get(), &call->req, &call->resp,
                                                       std::move(cb));
      },
      [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        OnAuthorized(s, owned->resp);
        Unref();
      });
}

void AgentStream::OnAuthorized(const grpc::Status& s, const v1::Agent& agent) {
  if (!s.ok()) {
    End(s);
    return;
  }
  AgentStream* to_close = nullptr;
  {
    // The phase and the registry entry change together under mu_, so OnDone (which sets
    // kDone under mu_ and then removes the entry) cannot run between them.
    std::lock_guard<std::mutex> lock(mu_);
    if (phase_ != Phase::kAuthorizing) return;  // ended while the check ran
    platform_ = agent.platform();
    outcomes_ = std::make_shared<OutcomeForwarder>(deps_.backends, deps_.timers, deps_.outcomes,
                                                   Actor{claims_.sub, "agent", peer_});
    phase_ = Phase::kOpen;
    to_close = deps_.registry.Add(claims_.sub, this, agent.stream_seq());
  }
  if (to_close != nullptr) {
    to_close->Close(
        grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream for this agent"));
    bool superseded = to_close == this;
    to_close->Unref();
    if (superseded) return;
  }
  v1::ServerMessage ack;
  ack.mutable_hello_ack()->set_check_in_interval_seconds(deps_.settings.check_in_interval());
  Now(ack.mutable_hello_ack()->mutable_server_time());
  Send(std::move(ack));
  ReadNext();
  DeliverPending();
}

void AgentStream::HandleCheckIn(uint64_t seq, const v1::AgentCheckIn& check_in) {
  // The token may expire while the stream lives: every message is checked.
  if (absl::Now() >= claims_.exp + JwtCodec::kClockSkew) {
    deps_.authn.CountFailure(*ctx_, "expired", claims_.sub);
    End(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid token: expired"));
    return;
  }
  if (absl::Status limited = deps_.limits.check_in.Acquire(claims_.sub); !limited.ok()) {
    SlowDown(seq, limited);
    return;
  }
  throttled_in_a_row_ = 0;
  // A stream speaks for the version its hello was authorised with: a different one here
  // would dodge the checks (or poison the highest-seen version). Upgrades reconnect.
  if (!check_in.version().empty() && check_in.version() != version_) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "check-in version differs from the hello's; reconnect after an upgrade"));
    return;
  }
  v1::CheckIn c;
  c.set_agent_id(claims_.sub);
  c.set_machine_id(machine_id_);
  c.set_version(version_);
  *c.mutable_agent_time() = check_in.agent_time();
  c.set_source(peer_);
  Ref();
  deps_.batcher.Submit(std::move(c), [this, seq](const absl::Status& s) {
    if (s.ok()) {
      deps_.check_ins.Increment();
      v1::ServerMessage ack;
      ack.mutable_check_in_ack()->set_ack_seq(seq);
      Now(ack.mutable_check_in_ack()->mutable_server_time());
      ack.mutable_check_in_ack()->set_check_in_interval_seconds(deps_.settings.check_in_interval());
      Send(std::move(ack));
    } else if (!TransientFailure(ToGrpcStatus(s).error_code())) {
      // Blocked, binding violation, version refused: what is pending for the agent (the
      // signed block notice, say) goes out first, so it learns why, then the stream ends.
      DeliverPendingThenClose(ToGrpcStatus(s));
    } else {
      LogWarn(absl::StrCat("check-in not recorded: ", s.message()));
    }
    Unref();
  });
}

void AgentStream::SlowDown(uint64_t seq, const absl::Status& limited) {
  deps_.check_ins_throttled.Increment();
  if (++throttled_in_a_row_ > kMaxIgnoredSlowDowns) {
    // Ignores the answers: ends with the retry delay, after the answers already queued.
    End(ToGrpcStatus(limited), /*drain=*/true);
    return;
  }
  absl::Duration wait = RetryDelayOf(limited).value_or(absl::Seconds(1));
  auto retry_after = static_cast<int32_t>(absl::ToInt64Seconds(absl::Ceil(wait, absl::Seconds(1))));
  v1::ServerMessage m;
  v1::SlowDown* slow = m.mutable_slow_down();
  slow->set_ack_seq(seq);
  slow->set_retry_after_seconds(std::max(1, retry_after));
  slow->set_check_in_interval_seconds(std::max(deps_.settings.check_in_interval(), retry_after));
  Send(std::move(m));
}

void AgentStream::HandleAck(const v1::InstructionAck& ack) {
  if (ack.instruction_id().empty()) {
    // The agent refused an envelope it could not verify (forged, stale, replayed).
    LogWarn(absl::StrCat("SECURITY: agent ", claims_.sub,
                         " refused an unverifiable instruction: ", ack.error().substr(0, 200)));
    return;
  }
  outbox_.Acknowledged(ack.instruction_id());
  if (absl::StartsWith(ack.instruction_id(), "upd-")) {
    outcomes_->Push(BackendAck<v1::UpdateInstructionAck>(claims_.sub, ack));
  } else {
    outcomes_->Push(BackendAck<v1::AckInstructionRequest>(claims_.sub, ack));
  }
}

void AgentStream::HandleDeliveryReport(const v1::ReportDeliveryRequest& report) {
  v1::ReportDeliveryRequest req = report;
  req.set_agent_id(claims_.sub);  // never the agent's own claim
  outcomes_->Push(std::move(req));
}

void AgentStream::HandleVerifyResponse(const v1::VerifyResponse& resp) {
  v1::RecordVerifyRequest req;
  req.set_agent_id(claims_.sub);
  req.set_instruction_id(resp.instruction_id());
  req.set_machine_id(resp.machine_id());
  for (int i = 0; i < resp.pinned_key_ids_size() && i < 16; ++i) {
    req.add_pinned_key_ids(resp.pinned_key_ids(i));
  }
  req.set_source(peer_);
  CrashPoint("forward-verify");
  outcomes_->Push(std::move(req));
}

void AgentStream::DeliverPending() {
  if (!IsOpen()) return;
  if (!outbox_.StartRound(/*steps=*/2)) return;  // folded into one more round after this one
  deps_.fetch_rounds.Increment();
  FetchAgentInstructions();
  FetchUpdateInstructions();
}

void AgentStream::FetchAgentInstructions() {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = BackendContext();
    v1::AgentInstructionsRequest req;
    v1::AgentInstructionsResponse resp;
  };
  auto* call = new Call;
  call->req.set_agent_id(claims_.sub);
  Ref();
  GatedCall(
      *deps_.backends.agents_gate,
      [this, call](Completion cb) {
        deps_.backends.agents->async()->PendingInstructions(call->ctx.get(), &call->req,
                                                            &call->resp, std::move(cb));
      },
      [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        std::vector<v1::Instruction> to_sign;
        if (!s.ok()) {
          LogWarn(
              absl::StrCat("cannot fetch instructions for ", claims_.sub, ": ", s.error_message()));
        } else {
          for (const auto& in : owned->resp.instructions()) {
            if (outbox_.MarkSent(in.instruction_id())) to_sign.push_back(in);
          }
        }
        outbox_.AddSteps(static_cast<int>(to_sign.size()));  // before any of them can end
        for (auto& in : to_sign) SignAndSend(std::move(in));
        StepDone(s.ok());
        Unref();
      });
}

void AgentStream::FetchUpdateInstructions() {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = BackendContext();
    v1::PendingInstructionsRequest req;
    v1::PendingInstructionsResponse resp;
  };
  auto* call = new Call;
  FillUpdateRequest(&call->req);
  Ref();
  GatedCall(
      *deps_.backends.updates_gate,
      [this, call](Completion cb) {
        deps_.backends.updates->async()->PendingInstructions(call->ctx.get(), &call->req,
                                                             &call->resp, std::move(cb));
      },
      [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        if (!s.ok()) {
          LogWarn(absl::StrCat("cannot fetch update offers for ", claims_.sub, ": ",
                               s.error_message()));
        } else {
          DeliverUpdateInstructions(owned->resp.mutable_instructions());
        }
        StepDone(s.ok());
        Unref();
      });
}

bool AgentStream::UpdateRequest(v1::PendingInstructionsRequest* out) {
  if (!IsOpen()) return false;
  FillUpdateRequest(out);
  return true;
}

bool AgentStream::OpenAgentId(std::string* out) {
  if (!IsOpen()) return false;
  *out = claims_.sub;  // fixed once the hello is authorised
  return true;
}

void AgentStream::FillUpdateRequest(v1::PendingInstructionsRequest* out) const {
  // Fixed once the hello is authorised (before the phase becomes kOpen).
  out->set_agent_id(claims_.sub);
  out->set_platform(platform_);
  out->set_version(version_);
  out->set_channel(channel_);
  for (const auto& id : pinned_key_ids_) out->add_pinned_key_ids(id);
}

void AgentStream::DeliverUpdateInstructions(
    google::protobuf::RepeatedPtrField<v1::SignedEnvelope>* envs) {
  for (auto& env : *envs) SendOnce(std::move(env));
}

bool AgentStream::IsOpen() {
  std::lock_guard<std::mutex> lock(mu_);
  return phase_ == Phase::kOpen;
}

bool AgentStream::Ended() {
  std::lock_guard<std::mutex> lock(mu_);
  return EndingLocked();
}

void AgentStream::SendOnce(v1::SignedEnvelope env) {
  v1::Instruction in;  // our own backend's bytes: parsed only to learn the id
  if (!in.ParseFromString(env.payload())) return;
  if (!outbox_.MarkSent(in.instruction_id())) return;
  v1::ServerMessage msg;
  *msg.mutable_instruction() = std::move(env);
  Send(std::move(msg));
  deps_.instructions_sent.Increment();
}

void AgentStream::SignAndSend(v1::Instruction in) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx = BackendContext();
    v1::SignInstructionRequest req;
    v1::SignedEnvelope resp;
  };
  auto* call = new Call;
  *call->req.mutable_instruction() = std::move(in);
  Ref();
  GatedCall(
      *deps_.backends.updates_gate,
      [this, call](Completion cb) {
        deps_.backends.updates->async()->SignInstruction(call->ctx.get(), &call->req, &call->resp,
                                                         std::move(cb));
      },
      [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        if (s.ok()) {
          v1::ServerMessage msg;
          *msg.mutable_instruction() = std::move(owned->resp);
          Send(std::move(msg));
          deps_.instructions_sent.Increment();
        } else {
          // Not sent: forget it so the next round retries.
          LogWarn(absl::StrCat("cannot sign an instruction: ", s.error_message()));
          outbox_.Unsent(owned->req.instruction().instruction_id());
        }
        StepDone(s.ok());
        Unref();
      });
}

void AgentStream::StepDone(bool ok) {
  std::optional<InstructionOutbox::AfterRound> next = outbox_.StepDone(ok);
  if (!next) return;
  using Action = InstructionOutbox::AfterRound::Action;
  switch (next->action) {
    case Action::kNothing:
      break;
    case Action::kFetchAgain:
      DeliverPending();
      break;
    case Action::kClose:
      End(next->close_status, /*drain=*/true);
      break;
    case Action::kRetry:
      if (Ended()) break;
      Ref();
      deps_.timers.RunAfter(next->retry_in, [this](bool fired) {
        if (fired) DeliverPending();
        Unref();
      });
      break;
  }
}

void AgentStream::DeliverPendingThenClose(const grpc::Status& status) {
  outbox_.CloseAfterDelivery(status);
  if (!IsOpen()) {
    End(status);  // nothing was delivered yet (or it is ending anyway)
    return;
  }
  DeliverPending();
}

void AgentStream::Send(v1::ServerMessage msg) {
  bool overflow = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (EndingLocked()) return;
    msg.set_seq(next_seq_++);
    if (writing_) {
      if (queue_.size() < kMaxQueuedMessages) {
        queue_.push_back(std::move(msg));
        return;
      }
      // The agent stopped reading: end without the queue (Finish follows the write in flight).
      overflow = true;
      phase_ = Phase::kEnding;
      finish_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                    absl::StrCat("more than ", kMaxQueuedMessages,
                                                 " messages waiting for the agent to read"));
    } else {
      writing_ = true;
      in_flight_ = std::move(msg);
    }
  }
  if (overflow) {
    LogWarn(absl::StrCat("agent ", claims_.sub, " stopped reading its stream; ending it"));
    return;
  }
  StartWrite(&in_flight_);
}

void AgentStream::OnWriteDone(bool ok) {
  bool write_next = false;
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ok && (phase_ == Phase::kOpen || phase_ == Phase::kDraining) && !queue_.empty()) {
      in_flight_ = std::move(queue_.front());
      queue_.pop_front();
      write_next = true;
    } else {
      writing_ = false;
      if (!ok && !EndingLocked()) {
        phase_ = Phase::kEnding;
        finish_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream write failed");
      }
      if (phase_ == Phase::kDraining || phase_ == Phase::kEnding) {
        phase_ = Phase::kFinished;
        finish = true;
      }
    }
  }
  if (write_next) StartWrite(&in_flight_);
  if (finish) Finish(finish_status_);
}

void AgentStream::End(const grpc::Status& status, bool drain) {
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (EndingLocked()) return;
    phase_ = drain ? Phase::kDraining : Phase::kEnding;
    finish_status_ = status;
    if (!writing_) {
      phase_ = Phase::kFinished;
      finish = true;
    }
  }
  if (finish) Finish(status);
}

void AgentStream::OnCancel() { End(grpc::Status::CANCELLED); }

void AgentStream::OnDone() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kDone;
  }
  if (admitted_) {
    deps_.registry.Remove(claims_.sub, this);  // a no-op unless it is the registered stream
    deps_.registry.Release(claims_.sub);
  }
  deps_.connected.Decrement();
  Unref();
}

}  // namespace redflag::gateway

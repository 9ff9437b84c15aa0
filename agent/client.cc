#include "agent/client.h"

#include <sodium.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/instruction_verifier.h"
#include "agent/self_update.h"
#include "agent/updater.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/status.h"
#include "common/tls.h"

namespace redflag::agent {
namespace {

void Now(google::protobuf::Timestamp* ts) { ts->set_seconds(absl::ToUnixSeconds(absl::Now())); }

// Makes the agent's next call ride a fresh connection attempt: gRPC's own reconnect backoff
// is reset, and since the reset takes effect asynchronously, a channel still in
// TRANSIENT_FAILURE is given up to a second to move on (else the call would fail at once with
// the cached "connection refused" although the gateway is back).
void ConnectNow(grpc::Channel& channel) {
  grpc::experimental::ChannelResetConnectionBackoff(&channel);
  if (channel.GetState(true) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
    channel.WaitForStateChange(GRPC_CHANNEL_TRANSIENT_FAILURE,
                               absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }
}

}  // namespace

AgentClient::AgentClient(AgentConfig config, StateDir state)
    : config_(std::move(config)),
      state_dir_(std::move(state)),
      channel_(MakeChannel(config_.server, TlsChannelCredentials(config_.ca_pem))),
      stub_(v1::AgentGateway::NewStub(channel_)) {}

absl::Status AgentClient::EnsureEnrolled() {
  REDFLAG_ASSIGN_OR_RETURN(std::optional<v1::AgentState> saved, state_dir_.Load());
  if (saved && !saved->agent_id().empty()) {
    state_ = *std::move(saved);
    LogInfo(absl::StrCat("enrolled as agent ", state_.agent_id()));
    return absl::OkStatus();
  }
  if (config_.registration_token.empty()) {
    return absl::FailedPreconditionError(
        "not enrolled yet: give a registration token (--registration-token or "
        "REDFLAG_REGISTRATION_TOKEN)");
  }
  v1::RegisterRequest req;
  req.set_registration_token(config_.registration_token);
  req.set_machine_id(config_.machine_id);
  req.set_hostname(config_.hostname);
  req.set_platform(config_.platform);
  req.set_version(config_.version);
  v1::RegisterResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  ctx.AddMetadata("x-machine-id", config_.machine_id);
  grpc::Status s = stub_->Register(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("registration refused: ", s.error_message()));
  }
  if (resp.signing_keys().empty()) {
    return absl::FailedPreconditionError("server offered no update-signing key to pin");
  }
  if (!config_.pinned_key_id.empty()) {
    bool found = false;
    for (const auto& k : resp.signing_keys()) found |= k.key_id() == config_.pinned_key_id;
    if (!found) {
      return absl::PermissionDeniedError(
          absl::StrCat("server's signing keys do not include the configured fingerprint ",
                       config_.pinned_key_id, "; refusing to enroll"));
    }
  }
  state_.set_agent_id(resp.agent_id());
  state_.set_access_token(resp.credentials().access_token());
  state_.set_refresh_token(resp.credentials().refresh_token());
  state_.set_machine_id(config_.machine_id);
  state_.set_server(config_.server);
  for (const auto& k : resp.signing_keys()) *state_.add_pinned_keys() = k;
  REDFLAG_RETURN_IF_ERROR(state_dir_.Save(state_));
  LogInfo(absl::StrCat("registered as agent ", state_.agent_id(), "; pinned signing key ",
                       resp.signing_keys(0).key_id()));
  return absl::OkStatus();
}

absl::Status AgentClient::RefreshCredentials() {
  v1::RefreshAgentRequest req;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    req.set_refresh_token(state_.refresh_token());
    req.set_agent_id(state_.agent_id());
  }
  v1::TokenPair resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  ctx.AddMetadata("x-machine-id", config_.machine_id);
  grpc::Status s = stub_->RefreshCredentials(&ctx, req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  std::lock_guard<std::mutex> lock(state_mu_);
  state_.set_access_token(resp.access_token());
  state_.set_refresh_token(resp.refresh_token());
  return state_dir_.Save(state_);
}

std::optional<v1::AgentMessage> AgentClient::HandleInstruction(const v1::SignedEnvelope& env) {
  v1::AgentMessage reply;
  std::lock_guard<std::mutex> lock(state_mu_);
  absl::StatusOr<v1::Instruction> in = VerifyInstruction(env, state_, absl::Now());
  if (!in.ok()) {
    // The payload is unverified, so its instruction id is not trusted: report without one.
    LogError(absl::StrCat("SECURITY: refused an instruction: ", in.status().message()));
    reply.mutable_ack()->set_applied(false);
    reply.mutable_ack()->set_error(std::string(in.status().message()));
    return reply;
  }
  const std::string& id = in->instruction_id();
  reply.mutable_ack()->set_instruction_id(id);
  // A refusal whose answer would not change: recorded as applied so it is never retried.
  auto refuse = [&](const std::string& error) {
    reply.mutable_ack()->set_applied(false);
    reply.mutable_ack()->set_error(error);
    MarkApplied(state_, id);
    (void)state_dir_.Save(state_);
    return reply;
  };
  // A verify challenge is answered afresh each time it comes (re-reading the fingerprint
  // changes nothing): when it is re-delivered, the first answer never reached the agents
  // service, and an ack alone would close the challenge with no result recorded.
  if (AlreadyApplied(state_, id) && !in->has_verify()) {
    // Re-delivered after a reconnect: apply nothing. An offer's outcome is reported again
    // first (the first report may have died with a gateway), then acknowledged as it went.
    reply.mutable_ack()->set_applied(true);
    if (in->has_offer()) {
      if (const v1::OfferOutcome* o = FindOfferOutcome(state_, id)) {
        ReportDelivery(o->delivery_id(), o->state(), o->failure_code(), o->failure_reason());
        reply.mutable_ack()->set_applied(o->state() == v1::INSTALLED);
        reply.mutable_ack()->set_error(o->failure_reason());
      }
    }
    (void)state_dir_.Save(state_);
    return reply;
  }
  switch (in->body_case()) {
    case v1::Instruction::kWarning:
      LogWarn(absl::StrCat("WARNING from operator: ", in->warning().message()));
      break;
    case v1::Instruction::kBlock:
      LogError(absl::StrCat("this agent has been blocked: ", in->block().reason()));
      break;
    case v1::Instruction::kVerify: {
      absl::StatusOr<std::string> fp = config_.fingerprint
                                           ? config_.fingerprint()
                                           : absl::StatusOr<std::string>(config_.machine_id);
      reply.Clear();
      v1::VerifyResponse* v = reply.mutable_verify_response();
      v->set_instruction_id(id);
      v->set_machine_id(fp.ok() ? *fp : std::string());
      for (const auto& k : state_.pinned_keys()) v->add_pinned_key_ids(k.key_id());
      LogInfo("verification requested by operator; fingerprint re-sent");
      break;
    }
    case v1::Instruction::kOffer: {
      if (state_.has_pending_self_update() && state_.pending_self_update().instruction_id() == id) {
        // Re-delivered while the self-update it started awaits its confirming check-in: that
        // confirmation acknowledges it. Applying it again would swap a second time.
        return std::nullopt;
      }
      std::lock_guard<std::mutex> ol(offers_mu_);
      if (queued_ids_.insert(id).second) {
        offers_.push_back({id, in->offer()});
        offers_cv_.notify_one();
      }
      return std::nullopt;  // acknowledged by the update worker when it is done
    }
    case v1::Instruction::kKeyRevocation: {
      const v1::KeyRevocation& rev = in->key_revocation();
      if (absl::Status s = ApplyKeyRevocation(env.key_id(), rev, state_); !s.ok()) {
        LogError(absl::StrCat("SECURITY: refused a key revocation: ", s.message()));
        return refuse(std::string(s.message()));
      }
      LogWarn(absl::StrCat("revoked update-signing key ", rev.key_id(), " (signed by ",
                           env.key_id(), "): ", rev.reason()));
      break;
    }
    case v1::Instruction::kKeyAnnouncement: {
      const v1::SigningKey& k = in->key_announcement().key();
      if (IsKeyRevoked(state_, k.key_id())) {
        return refuse(absl::StrCat("key ", k.key_id(), " was revoked"));
      }
      bool known = false;
      for (const auto& p : state_.pinned_keys()) known |= p.key_id() == k.key_id();
      if (!known) {
        v1::SigningKey* pinned = state_.add_pinned_keys();
        pinned->set_key_id(k.key_id());
        pinned->set_public_key(k.public_key());
        pinned->set_state(v1::SigningKey::ACCEPTED);
        LogInfo(absl::StrCat("pinned new update-signing key ", k.key_id(), ", endorsed by ",
                             in->key_announcement().endorsement().key_id()));
      }
      break;
    }
    case v1::Instruction::kRevocation:
      state_.add_revoked_update_ids(in->revocation().update_id());
      LogWarn(absl::StrCat("update ", in->revocation().update_id(),
                           " was revoked: ", in->revocation().reason()));
      break;
    default:
      return refuse("instruction type not supported by this agent");
  }
  // Persist before acknowledging: a crash after this point re-acks, never re-applies.
  MarkApplied(state_, id);
  if (absl::Status s = state_dir_.Save(state_); !s.ok()) {
    LogError(absl::StrCat("cannot persist applied instruction: ", s.message()));
  }
  if (reply.has_ack()) reply.mutable_ack()->set_applied(true);
  return reply;
}

bool AgentClient::SendOnStream(v1::AgentMessage msg) {
  std::lock_guard<std::mutex> lock(stream_mu_);
  if (stream_ == nullptr) return false;
  msg.set_seq(seq_++);
  return stream_->Write(msg);
}

v1::AgentMessage DeliveryReportMessage(const std::string& delivery_id, v1::DeliveryState state,
                                       const std::string& code, const std::string& reason) {
  v1::AgentMessage msg;
  v1::ReportDeliveryRequest* r = msg.mutable_delivery_report();
  r->set_delivery_id(delivery_id);
  r->set_state(state);
  r->set_failure_code(code);
  r->set_failure_reason(reason);
  return msg;
}

void AgentClient::ReportDelivery(const std::string& delivery_id, v1::DeliveryState state,
                                 const std::string& code, const std::string& reason) {
  if (!SendOnStream(DeliveryReportMessage(delivery_id, state, code, reason))) {
    LogWarn(absl::StrCat("delivery report ", v1::DeliveryState_Name(state), " not sent: offline"));
  }
}

void AgentClient::UpdateLoop() {
  while (true) {
    PendingOffer next;
    {
      std::unique_lock<std::mutex> lock(offers_mu_);
      offers_cv_.wait(lock, [this] { return stop_.load() || !offers_.empty(); });
      if (stop_) return;
      next = std::move(offers_.front());
      offers_.pop_front();
    }
    ApplyOffer(next.instruction_id, next.offer);
    std::lock_guard<std::mutex> lock(offers_mu_);
    queued_ids_.erase(next.instruction_id);
  }
}

void AgentClient::ApplyOffer(const std::string& instruction_id, const v1::UpdateOffer& offer) {
  v1::AgentState snapshot;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    snapshot = state_;
  }
  std::variant<v1::Manifest, UpdateFailure> checked =
      CheckManifest(offer.signed_manifest(), snapshot, config_.version);
  std::optional<UpdateFailure> failure;
  v1::Manifest m;
  if (auto* f = std::get_if<UpdateFailure>(&checked)) {
    failure = *f;
  } else {
    m = std::get<v1::Manifest>(checked);
    LogInfo(absl::StrCat("update offered: ", m.name(), " ", m.version(), " (", m.size(),
                         " bytes, sha256 ", m.sha256().substr(0, 16), "...)"));
    ReportDelivery(offer.delivery_id(), v1::DOWNLOADING);
    Fetch fetch = [&](int64_t offset, const std::function<bool(const v1::DownloadChunk&)>& sink) {
      grpc::ClientContext ctx;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        ctx.AddMetadata("authorization", absl::StrCat("Bearer ", state_.access_token()));
      }
      ctx.AddMetadata("x-machine-id", config_.machine_id);
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(30)));
      ConnectNow(*channel_);
      v1::DownloadRequest req;
      req.set_update_id(m.update_id());
      req.set_offset(offset);
      auto reader = stub_->Download(&ctx, req);
      v1::DownloadChunk chunk;
      while (reader->Read(&chunk)) {
        if (!sink(chunk)) {
          ctx.TryCancel();
          break;
        }
      }
      return FromGrpcStatus(reader->Finish());
    };
    int64_t logged = 0;
    failure = DownloadVerifyInstall(
        m, fetch, config_.install_dir + "/.staging", config_.install_dir, [&](int64_t have) {
          if (have - logged >= (1 << 20) || have == m.size()) {
            LogInfo(absl::StrCat("downloading ", m.name(), " ", m.version(), ": ", have, "/",
                                 m.size(), " bytes"));
            logged = have;
          }
        });
    // Revoked while downloading: the revocation wins, nothing stays installed under it.
    if (!failure) {
      std::lock_guard<std::mutex> lock(state_mu_);
      for (const auto& id : state_.revoked_update_ids()) {
        if (id == m.update_id()) failure = UpdateFailure{"revoked", "revoked during download"};
      }
    }
    if (!failure && m.kind() == v1::AGENT) {
      failure = SelfUpdate(instruction_id, offer.delivery_id(), m);  // returns only on failure
    }
  }
  v1::AgentMessage ack;
  ack.mutable_ack()->set_instruction_id(instruction_id);
  if (failure) {
    LogError(absl::StrCat("SECURITY: update refused (", failure->code, "): ", failure->reason));
    ReportDelivery(offer.delivery_id(), v1::FAILED, failure->code, failure->reason);
    ack.mutable_ack()->set_applied(false);
    ack.mutable_ack()->set_error(failure->reason);
  } else {
    ReportDelivery(offer.delivery_id(), v1::VERIFIED);
    LogInfo(absl::StrCat("installed ", m.name(), " ", m.version(), " into ", config_.install_dir));
    ReportDelivery(offer.delivery_id(), v1::INSTALLED);
    ack.mutable_ack()->set_applied(true);
  }
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (!failure) (*state_.mutable_installed_versions())[m.name()] = m.version();
    v1::OfferOutcome outcome;
    outcome.set_instruction_id(instruction_id);
    outcome.set_delivery_id(offer.delivery_id());
    outcome.set_state(failure ? v1::FAILED : v1::INSTALLED);
    if (failure) {
      outcome.set_failure_code(failure->code);
      outcome.set_failure_reason(failure->reason);
    }
    RecordOfferOutcome(state_, std::move(outcome));
    MarkApplied(state_, instruction_id);
    if (absl::Status s = state_dir_.Save(state_); !s.ok()) {
      LogError(absl::StrCat("cannot persist update state: ", s.message()));
    }
  }
  SendOnStream(std::move(ack));
}

std::optional<UpdateFailure> AgentClient::SelfUpdate(const std::string& instruction_id,
                                                     const std::string& delivery_id,
                                                     const v1::Manifest& m) {
  std::string candidate = config_.install_dir + "/" + m.name();
  if (absl::Status s = SelfTest(candidate, m.version(), config_.self_test_timeout); !s.ok()) {
    return UpdateFailure{"install", std::string(s.message())};
  }
  std::string exe = SelfPath();
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    v1::PendingSelfUpdate* p = state_.mutable_pending_self_update();
    p->set_delivery_id(delivery_id);
    p->set_instruction_id(instruction_id);
    p->set_version(m.version());
    p->set_previous_version(config_.version);
    if (absl::Status s = state_dir_.Save(state_); !s.ok()) {
      state_.clear_pending_self_update();
      return UpdateFailure{"install", std::string(s.message())};
    }
  }
  ReportDelivery(delivery_id, v1::VERIFIED);
  CrashPoint("self-update-saved");
  absl::Status s = SwapIn(exe, candidate);
  if (s.ok()) {
    CrashPoint("self-update-swapped");
    LogInfo(absl::StrCat("self-update to ", m.version(), ": restarting as the new binary"));
    s = ReExec(exe, config_.argv);  // returns only on failure
    (void)RollBack(exe);
  }
  std::lock_guard<std::mutex> lock(state_mu_);
  state_.clear_pending_self_update();
  (void)state_dir_.Save(state_);
  return UpdateFailure{"install", std::string(s.message())};
}

void AgentClient::WatchPendingSelfUpdate() {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (!state_.has_pending_self_update() || state_.pending_self_update().rolled_back()) return;
    const v1::PendingSelfUpdate& p = state_.pending_self_update();
    if (p.version() != config_.version) {
      // Saved, but the new binary never took over (killed before the swap, or the swap
      // failed): this is not the update, so it must not be confirmed. Forget it; the offer is
      // still unacknowledged, so the server delivers it again and it is applied afresh.
      LogWarn(absl::StrCat("self-update to ", p.version(),
                           " was interrupted before the new binary took over (running ",
                           config_.version, "); it will be applied again when re-offered"));
      std::error_code ec;
      std::filesystem::remove(SelfPath() + ".next", ec);
      state_.clear_pending_self_update();
      if (absl::Status s = state_dir_.Save(state_); !s.ok()) {
        LogError(absl::StrCat("cannot persist update state: ", s.message()));
      }
      return;
    }
    LogInfo(absl::StrCat("running self-updated version ", config_.version,
                         "; confirming with a check-in"));
  }
  std::thread([this] {
    absl::Time deadline = absl::Now() + config_.self_update_confirm_within;
    while (!self_update_settled_ && !stop_ && absl::Now() < deadline) {
      SleepUnlessStopped(absl::Milliseconds(200));
    }
    if (self_update_settled_ || stop_) return;
    std::string exe = SelfPath();
    LogError("SECURITY: the self-updated agent could not check in; rolling back");
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      state_.mutable_pending_self_update()->set_rolled_back(true);
      (void)state_dir_.Save(state_);
    }
    if (absl::Status s = RollBack(exe); s.ok()) (void)ReExec(exe, config_.argv);
    LogError("rollback failed; staying on the new binary");
  }).detach();
}

void AgentClient::OnCheckInAcknowledged() {
  if (self_update_settled_.exchange(true)) return;
  v1::AgentMessage ack;
  std::string delivery;
  bool rolled_back = false;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (!state_.has_pending_self_update()) return;
    const v1::PendingSelfUpdate& p = state_.pending_self_update();
    delivery = p.delivery_id();
    rolled_back = p.rolled_back();
    ack.mutable_ack()->set_instruction_id(p.instruction_id());
    ack.mutable_ack()->set_applied(!rolled_back);
    if (rolled_back) ack.mutable_ack()->set_error("the new version did not check in; rolled back");
    v1::OfferOutcome outcome;
    outcome.set_instruction_id(p.instruction_id());
    outcome.set_delivery_id(p.delivery_id());
    outcome.set_state(rolled_back ? v1::FAILED : v1::INSTALLED);
    if (rolled_back) {
      outcome.set_failure_code("install");
      outcome.set_failure_reason("the new version did not check in; rolled back");
    }
    RecordOfferOutcome(state_, std::move(outcome));
    MarkApplied(state_, p.instruction_id());
    state_.clear_pending_self_update();
    (void)state_dir_.Save(state_);
  }
  if (rolled_back) {
    ReportDelivery(delivery, v1::FAILED, "install",
                   "the new version did not check in; rolled back");
  } else {
    std::error_code ec;
    std::filesystem::remove(SelfPath() + ".prev", ec);
    LogInfo("self-update confirmed");
    ReportDelivery(delivery, v1::INSTALLED);
  }
  SendOnStream(std::move(ack));
}

bool AgentClient::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, absl::ToChronoMilliseconds(d), [this] { return stop_.load(); });
}

void AgentClient::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  if (live_ != nullptr) live_->TryCancel();
  cv_.notify_all();
}

absl::Status AgentClient::RunStream() {
  grpc::ClientContext ctx;
  v1::AgentMessage hello;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", state_.access_token()));
    hello.mutable_hello()->set_agent_id(state_.agent_id());
    for (const auto& k : state_.pinned_keys())
      hello.mutable_hello()->add_pinned_key_ids(k.key_id());
  }
  ctx.AddMetadata("x-machine-id", config_.machine_id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::CancelledError("stopping");
    live_ = &ctx;
  }
  ConnectNow(*channel_);
  auto stream = stub_->Connect(&ctx);
  hello.set_seq(seq_++);
  hello.mutable_hello()->set_version(config_.version);
  hello.mutable_hello()->set_machine_id(config_.machine_id);
  hello.mutable_hello()->set_channel(config_.channel);

  v1::ServerMessage msg;
  int interval = 30;                             // guarded by mu_ once the reader runs
  absl::Time not_before = absl::InfinitePast();  // guarded by mu_: a SlowDown's retry time
  absl::Status result = absl::OkStatus();
  if (!stream->Write(hello) || !stream->Read(&msg) || !msg.has_hello_ack()) {
    grpc::Status s = stream->Finish();
    result = s.ok() ? absl::UnavailableError("stream closed before hello was acknowledged")
                    : FromGrpcStatus(s);
  } else {
    interval = std::max(1, msg.hello_ack().check_in_interval_seconds());
    {
      std::lock_guard<std::mutex> lock(stream_mu_);
      stream_ = stream.get();
    }
    LogInfo(absl::StrCat("connected; checking in every ", interval, " s"));
    std::atomic<bool> reader_done{false};
    std::thread reader([&] {
      v1::ServerMessage in;
      while (stream->Read(&in)) {
        if (in.has_check_in_ack()) {
          LogInfo(absl::StrCat("check-in ", in.check_in_ack().ack_seq(), " acknowledged"));
          // The operators' interval now (a gateway before it was carried sends 0).
          if (const int now = in.check_in_ack().check_in_interval_seconds(); now > 0) {
            std::lock_guard<std::mutex> lock(mu_);
            if (now != interval) {
              LogInfo(absl::StrCat("the server asks for a check-in every ", now, " s"));
              interval = now;
              cv_.notify_all();
            }
          }
          OnCheckInAcknowledged();
        } else if (in.has_slow_down()) {
          const v1::SlowDown& slow = in.slow_down();
          std::lock_guard<std::mutex> lock(mu_);
          interval = std::max(interval, slow.check_in_interval_seconds());
          not_before = absl::Now() + absl::Seconds(std::max(1, slow.retry_after_seconds()));
          LogInfo(absl::StrCat(
              "check-in ", slow.ack_seq(), " over the server's rate limit: next in ",
              std::max(1, slow.retry_after_seconds()), " s, then every ", interval, " s"));
          cv_.notify_all();
        } else if (in.has_instruction()) {
          std::optional<v1::AgentMessage> reply = HandleInstruction(in.instruction());
          if (reply) SendOnStream(*std::move(reply));
        }
      }
      reader_done = true;
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    });
    while (!stop_ && !reader_done) {
      v1::AgentMessage check_in;

      check_in.mutable_check_in()->set_version(config_.version);
      Now(check_in.mutable_check_in()->mutable_agent_time());
      if (!SendOnStream(check_in)) break;
      std::unique_lock<std::mutex> lock(mu_);
      // The next check-in is due after the interval, or later if the server said to slow
      // down meanwhile (the reader moves not_before and wakes this wait).
      absl::Time due = absl::Now() + absl::Seconds(interval);
      while (!stop_ && !reader_done) {
        absl::Time until = std::max(due, not_before);
        absl::Time now = absl::Now();
        if (now >= until) break;
        cv_.wait_for(lock, absl::ToChronoMicroseconds(until - now));
      }
    }
    {
      std::lock_guard<std::mutex> lock(stream_mu_);
      stream->WritesDone();
      stream_ = nullptr;
    }
    if (stop_) ctx.TryCancel();
    reader.join();
    grpc::Status s = stream->Finish();
    result = s.ok() ? absl::UnavailableError("server closed the stream") : FromGrpcStatus(s);
  }
  std::lock_guard<std::mutex> lock(mu_);
  live_ = nullptr;
  return result;
}

void AgentClient::Run() {
  WatchPendingSelfUpdate();
  std::thread updates([this] { UpdateLoop(); });
  int attempt = 0;
  while (!stop_) {
    absl::Time started = absl::Now();
    absl::Status s = RunStream();
    if (stop_) break;
    if (s.code() == absl::StatusCode::kUnauthenticated) {
      absl::Status r = RefreshCredentials();
      if (r.ok()) {
        LogInfo("access token refreshed");
        continue;
      }
      LogWarn(absl::StrCat("cannot refresh credentials: ", r.message()));
    }
    LogWarn(absl::StrCat("stream ended: ", s.ToString()));
    // A stream that lived a while was healthy: start the backoff over.
    if (absl::Now() - started > absl::Minutes(1)) attempt = 0;
    absl::Duration delay = BackoffDelay(attempt++, absl::Seconds(1), config_.max_backoff);
    // A server that asked for a pause (rate limit, lockout) gets at least that long.
    if (std::optional<absl::Duration> asked = RetryDelayOf(s); asked && *asked > delay) {
      delay = *asked;
    }
    LogInfo(absl::StrCat("reconnecting in ", absl::FormatDuration(delay)));
    if (!SleepUnlessStopped(delay)) break;
  }
  {
    std::lock_guard<std::mutex> lock(offers_mu_);
    offers_cv_.notify_all();
  }
  updates.join();
}

}  // namespace redflag::agent

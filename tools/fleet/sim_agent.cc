#include "tools/fleet/sim_agent.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agent/client.h"
#include "agent/instruction_verifier.h"
#include "agent/updater.h"
#include "common/crypto.h"
#include "common/status.h"
#include "common/tls.h"

namespace redflag::fleet {
namespace {

void Now(google::protobuf::Timestamp* ts) { ts->set_seconds(absl::ToUnixSeconds(absl::Now())); }

std::string CodeName(grpc::StatusCode c) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
}

std::shared_ptr<grpc::Channel> OwnChannel(const FleetOptions& o,
                                          const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                          int index) {
  std::vector<std::string> targets = absl::StrSplit(o.target, ',', absl::SkipEmpty());
  const std::string& target = targets[static_cast<size_t>(index) % targets.size()];
  // The real agent's settings, plus a subchannel pool of its own: every simulated agent
  // gets its own TCP + TLS connection, as separate machines would, instead of gRPC sharing
  // one between channels with equal arguments.
  grpc::ChannelArguments args = ClientChannelArguments(o.authority);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(target, creds, args);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// One Connect stream. See the header for its lifetime rule.
class SimAgent::ConnectStream final
    : public grpc::ClientBidiReactor<v1::AgentMessage, v1::ServerMessage> {
 public:
  explicit ConnectStream(SimAgent* agent) : agent_(agent) { ++agent_->fleet_.live_reactors; }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    std::atomic<int>& live = agent_->fleet_.live_reactors;
    delete this;
    --live;
  }

  void Start(const std::string& access_token, const v1::AgentMessage& hello) {
    ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", access_token));
    ctx_.AddMetadata("x-machine-id", agent_->machine_id_);
    agent_->stub_->async()->Connect(&ctx_, this);
    AddHold();  // until reads ended and no write is in flight
    StartRead(&in_);
    Send(hello);
    StartCall();
  }

  // Queues a message; returns its seq, or 0 when the stream no longer writes.
  uint64_t Send(v1::AgentMessage msg) {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return 0;
      seq = next_seq_++;
      msg.set_seq(seq);
      if (writing_) {
        queue_.push_back(std::move(msg));
        return seq;
      }
      writing_ = true;
      out_ = std::move(msg);
    }
    StartWrite(&out_);
    return seq;
  }

  void Cancel() { ctx_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool release;
      {
        std::lock_guard<std::mutex> lock(mu_);
        closed_ = true;
        release = !writing_;
      }
      if (release) RemoveHold();
      return;
    }
    switch (in_.body_case()) {
      case v1::ServerMessage::kHelloAck:
        agent_->OnHelloAck(this, in_.hello_ack());
        break;
      case v1::ServerMessage::kCheckInAck:
        agent_->OnCheckInAck(this, in_.check_in_ack());
        break;
      case v1::ServerMessage::kInstruction:
        agent_->OnInstruction(in_.instruction());
        break;
      default:
        break;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool next = false;
    bool release = false;
    std::deque<v1::AgentMessage> unsent;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) closed_ = true;  // the stream broke; the read side ends too
      if (!closed_ && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        next = true;
      } else {
        writing_ = false;
        unsent.swap(queue_);
        release = closed_;
      }
    }
    if (next) {
      StartWrite(&out_);
      return;
    }
    // Outcomes that never left go back to the agent for its next stream.
    for (auto& m : unsent) {
      if (!m.has_check_in()) agent_->SendOutcome(std::move(m));
    }
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& s) override {
    agent_->OnStreamDone(this, s);
    Unref();
  }

 private:
  ~ConnectStream() override = default;

  SimAgent* agent_;
  std::atomic<int> refs_{1};  // gRPC's, until OnDone
  grpc::ClientContext ctx_;
  v1::ServerMessage in_;
  std::mutex mu_;
  bool closed_ = false;   // no new writes: reads ended or a write failed
  bool writing_ = false;  // a write is in flight
  uint64_t next_seq_ = 1;
  v1::AgentMessage out_;
  std::deque<v1::AgentMessage> queue_;
};

// ---------------------------------------------------------------------------------------
// One package download; checks offsets, size and SHA-256 as it goes. Deletes itself.
class SimAgent::DownloadCall final : public grpc::ClientReadReactor<v1::DownloadChunk> {
 public:
  DownloadCall(SimAgent* agent, std::string instruction_id, v1::UpdateOffer offer, v1::Manifest m,
               int attempt)
      : agent_(agent),
        instruction_id_(std::move(instruction_id)),
        offer_(std::move(offer)),
        manifest_(std::move(m)),
        attempt_(attempt) {
    ++agent_->fleet_.live_reactors;
  }

  void Start(const std::string& access_token) {
    ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", access_token));
    ctx_.AddMetadata("x-machine-id", agent_->machine_id_);
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(10)));
    req_.set_update_id(manifest_.update_id());
    agent_->stub_->async()->Download(&ctx_, &req_, this);
    StartRead(&chunk_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (chunk_.offset() != bytes_ ||
        bytes_ + static_cast<int64_t>(chunk_.data().size()) > manifest_.size()) {
      bad_ = true;
      ctx_.TryCancel();
      return;
    }
    hasher_.Update(chunk_.data());
    bytes_ += static_cast<int64_t>(chunk_.data().size());
    StartRead(&chunk_);
  }

  void OnDone(const grpc::Status& s) override {
    SimAgent* agent = agent_;
    std::atomic<int>& live = agent->fleet_.live_reactors;
    grpc::Status status = bad_ ? grpc::Status(grpc::StatusCode::DATA_LOSS, "bad chunk offset") : s;
    agent->OnDownloadDone(instruction_id_, offer_, manifest_, attempt_, status, bytes_,
                          hasher_.FinishHex());
    delete this;
    --live;
  }

 private:
  SimAgent* agent_;
  const std::string instruction_id_;
  const v1::UpdateOffer offer_;
  const v1::Manifest manifest_;
  const int attempt_;
  grpc::ClientContext ctx_;
  v1::DownloadRequest req_;
  v1::DownloadChunk chunk_;
  Sha256Hasher hasher_;
  int64_t bytes_ = 0;
  bool bad_ = false;
};

// ---------------------------------------------------------------------------------------

SimAgent::SimAgent(FleetContext& ctx, int index)
    : fleet_(ctx),
      index_(index),
      // The real agent sends the SHA-256 of its canonical fingerprint; so does this one,
      // of a synthetic fingerprint unique to the run and the agent.
      machine_id_(Sha256Hex(absl::StrCat("machine-id=", ctx.options.run_id, "-", index,
                                         "\ncpu=simulated\nmem=0\n"))) {
  channel_ = OwnChannel(ctx.options, ctx.creds, index);
  stub_ = v1::AgentGateway::NewStub(channel_);
}

SimAgent::State SimAgent::state() {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

absl::Time SimAgent::connected_at() {
  std::lock_guard<std::mutex> lock(mu_);
  return connected_at_;
}

std::string SimAgent::agent_id() {
  std::lock_guard<std::mutex> lock(mu_);
  return agent_state_.agent_id();
}

void SimAgent::Start() {
  bool registered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    registered = !agent_state_.agent_id().empty();
  }
  if (registered) {
    Connect();
  } else {
    Register();
  }
}

void SimAgent::Stop() {
  ConnectStream* s = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    state_ = State::kStopped;
    if (stream_ != nullptr) {
      s = stream_;
      s->Ref();
    }
  }
  if (s != nullptr) {
    s->Cancel();
    s->Unref();
  }
}

void SimAgent::Register() {
  const FleetOptions& o = fleet_.options;
  if (o.registration_tokens.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kFailed;
    return;
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    v1::RegisterResponse resp;
    absl::Time started = absl::Now();
  };
  auto* call = new Call;
  size_t token = static_cast<size_t>(index_ / std::max(1, o.seats_per_token));
  call->req.set_registration_token(o.registration_tokens[token % o.registration_tokens.size()]);
  call->req.set_machine_id(machine_id_);
  call->req.set_hostname(absl::StrCat("sim-", o.run_id, "-", index_));
  call->req.set_platform(o.platform);
  call->req.set_version(o.version);
  call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kRegistering;
  }
  ++fleet_.live_reactors;
  stub_->async()->Register(
      &call->ctx, &call->req, &call->resp, [this, call](const grpc::Status& s) {
        std::unique_ptr<Call> owned(call);
        if (s.ok()) {
          fleet_.stats.Sample("register", absl::Now() - owned->started);
          {
            std::lock_guard<std::mutex> lock(mu_);
            agent_state_.set_agent_id(owned->resp.agent_id());
            agent_state_.set_access_token(owned->resp.credentials().access_token());
            agent_state_.set_refresh_token(owned->resp.credentials().refresh_token());
            for (const auto& k : owned->resp.signing_keys()) *agent_state_.add_pinned_keys() = k;
            attempt_ = 0;
          }
          Connect();
        } else {
          fleet_.stats.Error("register", CodeName(s.error_code()));
          bool retry = s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                       s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
          if (retry) {
            ScheduleReconnect(s);
          } else {
            std::lock_guard<std::mutex> lock(mu_);
            state_ = State::kFailed;
          }
        }
        --fleet_.live_reactors;
      });
}

void SimAgent::Connect() {
  v1::AgentMessage hello;
  std::string token;
  ConnectStream* s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || stream_ != nullptr) return;
    state_ = State::kConnecting;
    token = agent_state_.access_token();
    v1::Hello* h = hello.mutable_hello();
    h->set_agent_id(agent_state_.agent_id());
    h->set_version(fleet_.options.version);
    h->set_machine_id(machine_id_);
    h->set_channel(fleet_.options.channel);
    for (const auto& k : agent_state_.pinned_keys()) h->add_pinned_key_ids(k.key_id());
    s = new ConnectStream(this);
    s->Ref();     // ours, until Start returned
    stream_ = s;  // not used for messages before its HelloAck (state_ kConnecting)
    ++generation_;
    connect_started_ = absl::Now();
    connected_at_ = absl::InfinitePast();
  }
  s->Start(token, hello);
  s->Unref();
}

SimAgent::ConnectStream* SimAgent::LiveStream() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_ == nullptr || state_ != State::kConnected) return nullptr;
  stream_->Ref();
  return stream_;
}

void SimAgent::ScheduleReconnect(const grpc::Status& why) {
  absl::Duration delay;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    state_ = State::kBackoff;
    // The real agent's policy: full jitter, and at least what the server asked for.
    delay =
        agent::BackoffDelay(attempt_++, fleet_.options.backoff_base, fleet_.options.backoff_cap);
    if (std::optional<absl::Duration> asked = RetryDelayOf(why); asked && *asked > delay) {
      delay = *asked;
    }
  }
  fleet_.timers.RunAfter(delay, [this](bool fired) {
    if (fired) Start();
  });
}

void SimAgent::OnHelloAck(ConnectStream* s, const v1::HelloAck& ack) {
  uint64_t generation;
  int interval;
  std::deque<v1::AgentMessage> outbox;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_ != s) return;
    fleet_.stats.Sample("connect", absl::Now() - connect_started_);
    state_ = State::kConnected;
    connected_at_ = absl::Now();
    attempt_ = 0;
    interval_seconds_ = std::max(1, ack.check_in_interval_seconds());
    generation = generation_;
    interval = interval_seconds_;
    outbox.swap(outbox_);
  }
  // The first check-in at once, like redflag-agent; then what waited for a stream.
  SendCheckIn(s);
  for (auto& m : outbox) SendOutcome(std::move(m));
  if (!fleet_.options.flood_check_ins) {
    fleet_.timers.RunAfter(absl::Seconds(interval), [this, generation](bool fired) {
      if (fired) CheckInTick(generation);
    });
  }
}

void SimAgent::SendCheckIn(ConnectStream* s) {
  v1::AgentMessage m;
  m.mutable_check_in()->set_version(fleet_.options.version);
  Now(m.mutable_check_in()->mutable_agent_time());
  absl::Time sent = absl::Now();
  uint64_t seq = s->Send(std::move(m));
  if (seq == 0) return;
  fleet_.stats.Count("check_ins_sent");
  std::lock_guard<std::mutex> lock(mu_);
  // An ack faster than this line is not sampled; in flood mode it still paces the next.
  if (stream_ == s) check_ins_in_flight_[seq] = sent;
}

void SimAgent::CheckInTick(uint64_t generation) {
  int interval;
  ConnectStream* s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || stream_ == nullptr || generation != generation_) return;
    s = stream_;
    s->Ref();
    interval = interval_seconds_;
  }
  SendCheckIn(s);
  s->Unref();
  fleet_.timers.RunAfter(absl::Seconds(interval), [this, generation](bool fired) {
    if (fired) CheckInTick(generation);
  });
}

int SimAgent::check_in_interval() {
  std::lock_guard<std::mutex> lock(mu_);
  return interval_seconds_;
}

void SimAgent::OnCheckInAck(ConnectStream* s, const v1::CheckInAck& ack) {
  fleet_.stats.Count("check_in_acks");
  bool next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ack.check_in_interval_seconds() > 0 && stream_ == s) {
      interval_seconds_ = ack.check_in_interval_seconds();  // the next tick uses it
    }
    auto it = check_ins_in_flight_.find(ack.ack_seq());
    if (it != check_ins_in_flight_.end()) {
      fleet_.stats.Sample("check_in_ack", absl::Now() - it->second);
      check_ins_in_flight_.erase(it);
    }
    next = fleet_.options.flood_check_ins && stream_ == s && !stopping_;
  }
  // Called from the stream's own read callback: the stream is alive.
  if (next) SendCheckIn(s);
}

void SimAgent::OnInstruction(const v1::SignedEnvelope& env) {
  std::optional<std::pair<std::string, v1::UpdateOffer>> offer;
  std::optional<v1::Manifest> manifest;
  std::string refused_code;
  std::string refused_reason;
  std::optional<v1::OfferOutcome> redelivered;
  v1::AgentMessage reply;
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<v1::Instruction> in = agent::VerifyInstruction(env, agent_state_, absl::Now());
    if (!in.ok()) {
      fleet_.stats.Error("instruction", absl::StatusCodeToString(in.status().code()));
      reply.mutable_ack()->set_applied(false);
      reply.mutable_ack()->set_error(std::string(in.status().message()));
    } else {
      const std::string& id = in->instruction_id();
      reply.mutable_ack()->set_instruction_id(id);
      reply.mutable_ack()->set_applied(true);
      if (agent::AlreadyApplied(agent_state_, id)) {
        // Re-delivered after a reconnect: apply nothing; an offer's outcome is reported
        // again, then acknowledged as it went (as redflag-agent does).
        if (const v1::OfferOutcome* o = agent::FindOfferOutcome(agent_state_, id);
            o != nullptr && in->has_offer()) {
          redelivered = *o;
          reply.mutable_ack()->set_applied(o->state() == v1::INSTALLED);
          reply.mutable_ack()->set_error(o->failure_reason());
        }
      } else if (in->has_offer()) {
        if (!offers_in_progress_.insert(id).second) return;  // already downloading
        std::variant<v1::Manifest, agent::UpdateFailure> checked = agent::CheckManifest(
            in->offer().signed_manifest(), agent_state_, fleet_.options.version);
        offer.emplace(id, in->offer());
        if (auto* f = std::get_if<agent::UpdateFailure>(&checked)) {
          refused_code = f->code;
          refused_reason = f->reason;
        } else if (std::get<v1::Manifest>(checked).kind() == v1::AGENT) {
          refused_code = "install";
          refused_reason = "a simulated agent does not replace its own binary";
        } else {
          manifest = std::get<v1::Manifest>(checked);
          deliveries_[manifest->update_id()].offer_verified = absl::Now();
        }
      } else {
        if (in->has_verify()) {
          reply.Clear();
          v1::VerifyResponse* v = reply.mutable_verify_response();
          v->set_instruction_id(id);
          v->set_machine_id(machine_id_);
          for (const auto& k : agent_state_.pinned_keys()) v->add_pinned_key_ids(k.key_id());
        } else if (in->has_revocation()) {
          agent_state_.add_revoked_update_ids(in->revocation().update_id());
        } else if (in->has_key_announcement()) {
          const v1::SigningKey& k = in->key_announcement().key();
          bool known = false;
          for (const auto& p : agent_state_.pinned_keys()) known |= p.key_id() == k.key_id();
          if (!known) *agent_state_.add_pinned_keys() = k;
        }
        agent::MarkApplied(agent_state_, id);
      }
    }
  }
  if (offer && !manifest) {
    FinishOffer(offer->first, offer->second.delivery_id(), "", refused_code, refused_reason);
    return;
  }
  if (offer) {
    Report(offer->second.delivery_id(), v1::DOWNLOADING);
    StartDownload(offer->first, offer->second, *manifest, 0);
    return;
  }
  if (redelivered) {
    fleet_.stats.Count("offers_reported_again");
    Report(redelivered->delivery_id(), redelivered->state(), redelivered->failure_code(),
           redelivered->failure_reason());
  }
  SendOutcome(std::move(reply));
}

void SimAgent::StartDownload(const std::string& instruction_id, const v1::UpdateOffer& offer,
                             const v1::Manifest& m, int attempt) {
  std::string token;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    token = agent_state_.access_token();
  }
  auto* call = new DownloadCall(this, instruction_id, offer, m, attempt);
  call->Start(token);
}

void SimAgent::OnDownloadDone(const std::string& instruction_id, const v1::UpdateOffer& offer,
                              const v1::Manifest& m, int attempt, const grpc::Status& s,
                              int64_t bytes, const std::string& sha256) {
  if (!s.ok()) {
    fleet_.stats.Error("download", CodeName(s.error_code()));
    bool transient = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                     s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                     s.error_code() == grpc::StatusCode::ABORTED;
    // As redflag-agent (agent::DownloadRetry): transient failures retried 40 times in a row.
    if (transient && attempt < 40) {
      absl::Duration delay =
          agent::BackoffDelay(std::min(attempt, 5), absl::Milliseconds(500), absl::Seconds(15));
      fleet_.timers.RunAfter(delay, [this, instruction_id, offer, m, attempt](bool fired) {
        if (fired) StartDownload(instruction_id, offer, m, attempt + 1);
      });
      return;
    }
    FinishOffer(instruction_id, offer.delivery_id(), m.update_id(), "download", s.error_message());
    return;
  }
  if (bytes != m.size()) {
    FinishOffer(instruction_id, offer.delivery_id(), m.update_id(), "size",
                absl::StrCat("got ", bytes, " bytes, manifest says ", m.size()));
    return;
  }
  if (sha256 != m.sha256()) {
    FinishOffer(instruction_id, offer.delivery_id(), m.update_id(), "checksum",
                "SHA-256 of the bytes does not match the manifest");
    return;
  }
  if (fleet_.options.install_fails && fleet_.options.install_fails(m, index_)) {
    Report(offer.delivery_id(), v1::VERIFIED);
    FinishOffer(instruction_id, offer.delivery_id(), m.update_id(), "install",
                "the package's install step failed on this machine");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    deliveries_[m.update_id()].downloaded = absl::Now();
    (*agent_state_.mutable_installed_versions())[m.name()] = m.version();
  }
  Report(offer.delivery_id(), v1::VERIFIED);
  FinishOffer(instruction_id, offer.delivery_id(), m.update_id(), "", "");
}

void SimAgent::FinishOffer(const std::string& instruction_id, const std::string& delivery_id,
                           const std::string& update_id, const std::string& failure_code,
                           const std::string& failure) {
  fleet_.stats.Count("offers_finished");
  if (failure_code.empty()) {
    Report(delivery_id, v1::INSTALLED);
  } else {
    fleet_.stats.Error("update", failure_code);
    Report(delivery_id, v1::FAILED, failure_code, failure);
  }
  Ack(instruction_id, failure_code.empty(), failure);
  std::lock_guard<std::mutex> lock(mu_);
  v1::OfferOutcome outcome;
  outcome.set_instruction_id(instruction_id);
  outcome.set_delivery_id(delivery_id);
  outcome.set_state(failure_code.empty() ? v1::INSTALLED : v1::FAILED);
  outcome.set_failure_code(failure_code);
  outcome.set_failure_reason(failure);
  agent::RecordOfferOutcome(agent_state_, std::move(outcome));
  agent::MarkApplied(agent_state_, instruction_id);
  offers_in_progress_.erase(instruction_id);
  if (!update_id.empty()) {
    DeliveryTimes& t = deliveries_[update_id];
    if (failure_code.empty()) {
      t.installed_reported = absl::Now();
    } else {
      t.failure = failure_code + ": " + failure;
    }
    fleet_.stats.Delivery(update_id, index_, t);
  }
}

void SimAgent::Report(const std::string& delivery_id, v1::DeliveryState state,
                      const std::string& code, const std::string& reason) {
  SendOutcome(agent::DeliveryReportMessage(delivery_id, state, code, reason));
}

void SimAgent::Ack(const std::string& id, bool applied, const std::string& error) {
  v1::AgentMessage m;
  m.mutable_ack()->set_instruction_id(id);
  m.mutable_ack()->set_applied(applied);
  m.mutable_ack()->set_error(error);
  SendOutcome(std::move(m));
}

void SimAgent::SendOutcome(v1::AgentMessage msg) {
  ConnectStream* s = LiveStream();
  if (s != nullptr) {
    uint64_t seq = s->Send(msg);
    s->Unref();
    if (seq != 0) return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  outbox_.push_back(std::move(msg));  // sent when the next stream is up
}

void SimAgent::OnStreamDone(ConnectStream* s, const grpc::Status& status) {
  bool reconnect;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_ == s) stream_ = nullptr;
    connected_at_ = absl::InfinitePast();
    check_ins_in_flight_.clear();
    reconnect = !stopping_;
  }
  if (!reconnect) return;
  fleet_.stats.Error("stream", CodeName(status.error_code()));
  ScheduleReconnect(status);
}

}  // namespace redflag::fleet

#include "services/gateway/download_relay.h"

#include "common/status.h"
#include "common/validate.h"

namespace redflag::gateway {

DownloadRelay::DownloadRelay(grpc::CallbackServerContext* ctx, const v1::DownloadRequest* req,
                             Backends& backends, Authenticator& authn)
    : backends_(backends), req_(*req) {
  absl::StatusOr<JwtClaims> claims = authn.Agent(*ctx);
  if (!claims.ok()) {
    End(ToGrpcStatus(claims.status()));
    return;
  }
  std::string machine = Metadata(*ctx, "x-machine-id");
  if (absl::Status s = ValidateMachineId("x-machine-id", machine); !s.ok()) {
    End(ToGrpcStatus(s));
    return;
  }
  if (req_.update_id().empty() || req_.update_id().size() > 64) {
    End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     "update_id is required (at most 64 characters)"));
    return;
  }
  req_.set_agent_id(claims->sub);  // the token decides whose offer this is
  req_.set_max_bytes(256 * 1024);
  authorize_.set_agent_id(claims->sub);
  authorize_.set_machine_id(machine);
  authorize_.set_source(ctx->peer());
  authorize_ctx_ = BackendContext();
  refs_ += 1;  // released after OnAuthorized
  GatedCall(
      *backends_.agents_gate,
      [this](Completion cb) {
        backends_.agents->async()->AuthorizeAgent(authorize_ctx_.get(), &authorize_, &agent_,
                                                  std::move(cb));
      },
      [this](const grpc::Status& s) {
        OnAuthorized(s);
        Unref();
      });
}

void DownloadRelay::OnAuthorized(const grpc::Status& s) {
  if (!s.ok()) {
    End(s);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    refs_ += 1;  // released in Backend::OnDone, or below when the gate refuses
  }
  backends_.download_gate->Run([this](const absl::Status& admitted, std::function<void()> release) {
    if (!admitted.ok()) {
      End(ToGrpcStatus(admitted));
      Unref();
      return;
    }
    StartBackend(std::move(release));
  });
}

void DownloadRelay::StartBackend(std::function<void()> release_slot) {
  release_slot_ = std::move(release_slot);
  // A cancellation that came while queued reaches the call through the context.
  backend_ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  backends_.updates->async()->Download(&backend_ctx_, &req_, &backend_);
  backend_.AddHold();  // removed once this relay starts no more reads (see header)
  backend_.StartRead(&chunk_);
  backend_.StartCall();
}

void DownloadRelay::Backend::OnReadDone(bool ok) {
  if (!ok) {
    RemoveHold();  // no more chunks: the call may end
    return;
  }
  relay_->StartWrite(&relay_->chunk_);  // the next read waits for this write
}

void DownloadRelay::OnWriteDone(bool ok) {
  if (ok) {
    backend_.StartRead(&chunk_);  // still holding: the backend call cannot have ended
    return;
  }
  backend_ctx_.TryCancel();  // the agent went away
  backend_.RemoveHold();
}

void DownloadRelay::Backend::OnDone(const grpc::Status& s) {
  DownloadRelay* relay = relay_;
  relay->release_slot_();
  relay->End(s);
  relay->Unref();
}

void DownloadRelay::OnCancel() {
  // Fails the pending read or write; its completion releases the hold.
  backend_ctx_.TryCancel();
}

void DownloadRelay::End(const grpc::Status& s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
  }
  Finish(s);
}

void DownloadRelay::OnDone() { Unref(); }

void DownloadRelay::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

}  // namespace redflag::gateway

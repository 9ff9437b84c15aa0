// AgentGateway.Download: relays an offered package's bytes from the updates service to
// the agent, one chunk at a time (the next chunk is read only after the agent took the
// last), so a download holds at most one chunk of gateway memory. The agent's token and
// machine binding are checked first; the updates service checks the offer. At most
// GateLimits::max_downloads relays talk to the updates service at once; the rest wait.
//
// Lifetime rule: the relay is deleted by the last of (a) its server-side OnDone and (b) the
// backend call's OnDone, if that call was started. Reads and writes alternate (ping-pong),
// so exactly one of them is pending until the relay stops reading. The backend call carries
// one hold (AddHold) from StartCall until then — released exactly once, when a read ends,
// a write to the agent fails, or the backend chunk is dropped — so the backend's OnDone never
// runs while a read may still be started. Finish is called exactly once: from the backend's
// OnDone (after the ping-pong stopped, so no write is pending) or before the backend started.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <mutex>

#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/authn.h"
#include "services/gateway/backends.h"

namespace redflag::gateway {

class DownloadRelay final : public grpc::ServerWriteReactor<v1::DownloadChunk> {
 public:
  DownloadRelay(grpc::CallbackServerContext* ctx, const v1::DownloadRequest* req,
                Backends& backends, Authenticator& authn);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  class Backend final : public grpc::ClientReadReactor<v1::DownloadChunk> {
   public:
    explicit Backend(DownloadRelay* relay) : relay_(relay) {}
    void OnReadDone(bool ok) override;
    void OnDone(const grpc::Status& s) override;

   private:
    DownloadRelay* relay_;
  };

  ~DownloadRelay() override = default;
  void OnAuthorized(const grpc::Status& s);
  void StartBackend(std::function<void()> release_slot);
  void End(const grpc::Status& s);
  void Unref();

  Backends& backends_;
  std::atomic<int> refs_{1};  // gRPC's, released in OnDone
  std::mutex mu_;
  bool finished_ = false;
  std::function<void()> release_slot_;  // the download gate's slot, freed in Backend::OnDone
  grpc::ClientContext backend_ctx_;
  std::unique_ptr<grpc::ClientContext> authorize_ctx_;
  v1::AuthorizeAgentRequest authorize_;
  v1::Agent agent_;
  v1::DownloadRequest req_;
  v1::DownloadChunk chunk_;
  Backend backend_{this};
};

}  // namespace redflag::gateway

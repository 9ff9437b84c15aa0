#include "tools/fleet/echo_server.h"

#include <atomic>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "redflag/v1/gateway.grpc.pb.h"

namespace redflag::fleet {
namespace {

// One echo stream. Lifetime: deletes itself in OnDone; Finish is called once, after reads
// ended and no write is in flight.
class EchoStream final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage> {
 public:
  EchoStream() { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish;
      {
        std::lock_guard<std::mutex> lock(mu_);
        closing_ = true;
        finish = !writing_;
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    v1::ServerMessage reply;
    if (in_.has_hello()) {
      reply.mutable_hello_ack()->set_check_in_interval_seconds(30);
    } else if (in_.has_check_in()) {
      reply.mutable_check_in_ack()->set_ack_seq(in_.seq());
    }
    if (reply.body_case() != v1::ServerMessage::BODY_NOT_SET) Send(std::move(reply));
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool next = false;
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ok && !closing_ && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        next = true;
      } else {
        writing_ = false;
        finish = closing_;
      }
    }
    if (next) StartWrite(&out_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  void Send(v1::ServerMessage m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;
      if (writing_) {
        queue_.push_back(std::move(m));
        return;
      }
      writing_ = true;
      out_ = std::move(m);
    }
    StartWrite(&out_);
  }

  std::mutex mu_;
  bool writing_ = false;
  bool closing_ = false;
  v1::AgentMessage in_;
  v1::ServerMessage out_;
  std::deque<v1::ServerMessage> queue_;
};

}  // namespace

class EchoServer::Service final : public v1::AgentGateway::CallbackService {
 public:
  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx, const v1::RegisterRequest*,
                                     v1::RegisterResponse* resp) override {
    resp->set_agent_id(absl::StrCat("echo-", next_++));
    resp->mutable_credentials()->set_access_token("echo");
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage>* Connect(
      grpc::CallbackServerContext*) override {
    return new EchoStream();
  }

 private:
  std::atomic<int> next_{0};
};

EchoServer::EchoServer() : service_(std::make_unique<Service>()) {}

EchoServer::~EchoServer() {
  if (server_.server) server_.Shutdown(absl::Seconds(2));
}

absl::StatusOr<std::unique_ptr<EchoServer>> EchoServer::Start(const TlsMaterial& tls) {
  std::unique_ptr<EchoServer> e(new EchoServer());
  ServerOptions o;
  o.address = "127.0.0.1:0";
  o.credentials = TlsServerCredentials(tls);
  o.services = {e->service_.get()};
  o.memory_quota_bytes = 1024u << 20;  // the gateway's
  absl::StatusOr<RunningServer> s = StartServer(o, &e->port_);
  if (!s.ok()) return s.status();
  e->server_ = *std::move(s);
  return e;
}

}  // namespace redflag::fleet

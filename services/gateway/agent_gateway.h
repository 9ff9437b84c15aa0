// The public agent endpoint: Register (token + fingerprint → agent + credentials +
// pinned keys, as a chain of asynchronous backend calls) and Connect (AgentStream).
#pragma once

#include "redflag/v1/gateway.grpc.pb.h"
#include "services/gateway/agent_stream.h"

namespace redflag::gateway {

class AgentGatewayImpl final : public v1::AgentGateway::CallbackService {
 public:
  explicit AgentGatewayImpl(StreamDeps deps) : deps_(deps) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const v1::RegisterRequest* req,
                                     v1::RegisterResponse* resp) override;
  grpc::ServerUnaryReactor* RefreshCredentials(grpc::CallbackServerContext* ctx,
                                               const v1::RefreshAgentRequest* req,
                                               v1::TokenPair* resp) override;
  grpc::ServerWriteReactor<v1::DownloadChunk>* Download(grpc::CallbackServerContext* ctx,
                                                        const v1::DownloadRequest* req) override;
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ServerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  StreamDeps deps_;
};

}  // namespace redflag::gateway

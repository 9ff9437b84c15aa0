// A stand-in gateway for adversarial tests: a real TLS server with the gateway's public
// certificate that, after the agent's hello, sends a scripted list of signed (or forged)
// instructions and records every message the agent sends back. Download serves whatever
// bytes the test chose (e.g. tampered ones). It plays the attacker who controls the
// channel: the agent must refuse everything not signed as it expects.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/crypto.h"
#include "redflag/v1/gateway.grpc.pb.h"

namespace redflag::testing {

class FakeGateway final : public v1::AgentGateway::Service {
 public:
  FakeGateway();
  ~FakeGateway() override;
  std::string address() const { return "localhost:" + std::to_string(port_); }

  // Instructions sent on the next stream, in order, after the hello ack.
  void Script(std::vector<v1::SignedEnvelope> envelopes);
  // Bytes served for an update id.
  void Serve(const std::string& update_id, std::string bytes);
  // Waits for `n` messages of the given kind ("ack", "report") from the agent.
  std::vector<v1::AgentMessage> WaitFor(const std::string& kind, size_t n, int timeout_ms);
  std::string hello_agent_id();

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) override;
  grpc::Status Download(grpc::ServerContext* ctx, const v1::DownloadRequest* req,
                        grpc::ServerWriter<v1::DownloadChunk>* writer) override;

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::SignedEnvelope> script_;
  std::map<std::string, std::string> bytes_;
  std::vector<v1::AgentMessage> received_;
  std::string hello_agent_id_;
};

// Signs like the updates service: an instruction for `agent_id` with a fresh nonce.
v1::SignedEnvelope SignedInstruction(const SigningKey& key, v1::Instruction in,
                                     absl::Time issued_at = absl::Now());
// A manifest for `bytes`, signed by `key`.
v1::SignedEnvelope SignedManifest(const SigningKey& key, const std::string& update_id,
                                  const std::string& name, const std::string& version,
                                  const std::string& bytes);
// An update offer for `agent_id`: the instruction and its manifest both signed by `key`.
v1::SignedEnvelope SignedOffer(const SigningKey& key, const std::string& agent_id,
                               const std::string& update_id, const std::string& name,
                               const std::string& version, const std::string& bytes,
                               absl::Time issued = absl::Now());
// The cluster's update-signing key (the test holds the same seed as the updates service).
SigningKey ServerSigningKey();

}  // namespace redflag::testing

#include "tests/support/fake_gateway.h"

#include <chrono>
#include <stdexcept>

#include "common/encoding.h"
#include "common/tls.h"
#include "tests/support/test_env.h"

namespace redflag::testing {

FakeGateway::FakeGateway() {
  TlsMaterial m{"", ReadFile(PkiFile("gateway-public.crt")),
                ReadFile(PkiFile("gateway-public.key"))};
  grpc::ServerBuilder b;
  b.AddListeningPort("127.0.0.1:0", TlsServerCredentials(m), &port_);
  b.RegisterService(this);
  server_ = b.BuildAndStart();
  if (!server_) throw std::runtime_error("fake gateway did not start");
}

FakeGateway::~FakeGateway() {
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
}

void FakeGateway::Script(std::vector<v1::SignedEnvelope> envelopes) {
  std::lock_guard<std::mutex> lock(mu_);
  script_ = std::move(envelopes);
}

void FakeGateway::Serve(const std::string& update_id, std::string bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_[update_id] = std::move(bytes);
}

std::string FakeGateway::hello_agent_id() {
  std::lock_guard<std::mutex> lock(mu_);
  return hello_agent_id_;
}

std::vector<v1::AgentMessage> FakeGateway::WaitFor(const std::string& kind, size_t n,
                                                   int timeout_ms) {
  auto matches = [&] {
    std::vector<v1::AgentMessage> out;
    for (const auto& m : received_) {
      if ((kind == "ack" && m.has_ack()) || (kind == "report" && m.has_delivery_report())) {
        out.push_back(m);
      }
    }
    return out;
  };
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return matches().size() >= n; });
  return matches();
}

grpc::Status FakeGateway::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::ServerMessage, v1::AgentMessage>* stream) {
  v1::AgentMessage in;
  if (!stream->Read(&in) || !in.has_hello()) return grpc::Status::OK;
  std::vector<v1::SignedEnvelope> script;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hello_agent_id_ = in.hello().agent_id();
    script = script_;
    script_.clear();
  }
  v1::ServerMessage ack;
  ack.mutable_hello_ack()->set_check_in_interval_seconds(60);
  stream->Write(ack);
  for (auto& env : script) {
    v1::ServerMessage m;
    *m.mutable_instruction() = env;
    stream->Write(m);
  }
  while (stream->Read(&in)) {
    std::lock_guard<std::mutex> lock(mu_);
    received_.push_back(in);
    cv_.notify_all();
  }
  return grpc::Status::OK;
}

grpc::Status FakeGateway::Download(grpc::ServerContext*, const v1::DownloadRequest* req,
                                   grpc::ServerWriter<v1::DownloadChunk>* writer) {
  std::string bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = bytes_.find(req->update_id());
    if (it == bytes_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such update");
    bytes = it->second;
  }
  for (int64_t off = req->offset(); off < static_cast<int64_t>(bytes.size()); off += 4096) {
    v1::DownloadChunk c;
    c.set_offset(off);
    c.set_data(bytes.substr(static_cast<size_t>(off), 4096));
    c.set_last(off + 4096 >= static_cast<int64_t>(bytes.size()));
    if (!writer->Write(c)) break;
  }
  return grpc::Status::OK;
}

v1::SignedEnvelope SignedInstruction(const SigningKey& key, v1::Instruction in,
                                     absl::Time issued_at) {
  if (in.instruction_id().empty()) in.set_instruction_id(RandomUuid());
  if (in.nonce().empty()) in.set_nonce(RandomUuid());
  in.mutable_issued_at()->set_seconds(absl::ToUnixSeconds(issued_at));
  return SignEnvelope(key, "redflag.v1.Instruction", in.SerializeAsString());
}

v1::SignedEnvelope SignedManifest(const SigningKey& key, const std::string& update_id,
                                  const std::string& name, const std::string& version,
                                  const std::string& bytes) {
  v1::Manifest m;
  m.set_update_id(update_id);
  m.set_name(name);
  m.set_version(version);
  m.set_platform("Linux-x86_64");
  m.set_channel("stable");
  m.set_kind(v1::PACKAGE);
  m.set_size(static_cast<int64_t>(bytes.size()));
  m.set_sha256(Sha256Hex(bytes));
  m.set_key_id(key.KeyId());
  return SignEnvelope(key, "redflag.v1.Manifest", m.SerializeAsString());
}

SigningKey ServerSigningKey() {
  absl::StatusOr<std::string> seed = HexDecode(TestVar("REDFLAG_SIGNING_PRIVATE_KEY"));
  if (!seed.ok()) throw std::runtime_error("bad signing key in test env");
  return *SigningKey::FromSeed(*seed);
}

v1::SignedEnvelope SignedOffer(const SigningKey& key, const std::string& agent_id,
                               const std::string& update_id, const std::string& name,
                               const std::string& version, const std::string& bytes,
                               absl::Time issued) {
  v1::Instruction in;
  in.set_agent_id(agent_id);
  in.mutable_offer()->set_delivery_id(RandomUuid());
  *in.mutable_offer()->mutable_signed_manifest() =
      SignedManifest(key, update_id, name, version, bytes);
  return SignedInstruction(key, in, issued);
}

}  // namespace redflag::testing

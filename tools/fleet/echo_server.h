// The raw baseline for the check-in rate: a minimal AgentGateway that answers Register with
// a dummy agent, Hello with HelloAck and every check-in with its CheckInAck at once — no
// authentication, no backend, no database — on the same server settings as every RedFlag
// server (common/server.h: TLS, keepalive, stream limits, quota). Driven by the same
// simulated agents, it measures what gRPC + TLS alone cost on this machine.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/server.h"
#include "common/tls.h"

namespace redflag::fleet {

class EchoServer {
 public:
  // Listens on 127.0.0.1 (a free port) with the given certificate.
  static absl::StatusOr<std::unique_ptr<EchoServer>> Start(const TlsMaterial& tls);
  ~EchoServer();
  int port() const { return port_; }

 private:
  class Service;
  EchoServer();
  std::unique_ptr<Service> service_;
  RunningServer server_;
  int port_ = 0;
};

}  // namespace redflag::fleet

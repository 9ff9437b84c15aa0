// Builds every RedFlag gRPC server the same way: reflection and grpc.health.v1 on,
// explicit HTTP/2 keepalive and stream limits, a ResourceQuota capping memory and
// threads. Serves until SIGINT/SIGTERM, then drains with a deadline.
#pragma once

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace redflag {

struct ServerOptions {
  std::string address;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::vector<grpc::Service*> services;
  // Memory the server may use for calls before it refuses new work.
  size_t memory_quota_bytes = 512u << 20;
  // Threads of the sync API's pool (handlers that block on the database run there). Sized
  // for two gateway replicas: each sends at most 24 unary calls and 16 downloads to one
  // service at once (services/gateway/backends.h GateLimits) and holds one Watch stream.
  int max_threads = 128;
  int max_concurrent_streams_per_connection = 100;
  // When set, every RPC is counted and timed here (common/grpc_metrics.h).
  prometheus::Registry* metrics = nullptr;
  // When set, a plaintext listener serving only grpc.health.v1 (and reflection), for
  // Kubernetes gRPC probes, which cannot speak TLS. Keep it off public networks.
  std::string health_address;
};

// A started server and, if asked for, its plaintext health listener.
struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<grpc::Server> health;
  void Shutdown(absl::Duration grace);
};

// Starts the server; UNAVAILABLE naming the address when it cannot listen.
// `bound_port` receives the port actually bound (for ":0").
absl::StatusOr<RunningServer> StartServer(const ServerOptions& options, int* bound_port = nullptr);

// Blocks until SIGINT or SIGTERM. Call BlockShutdownSignals() first thing in main().
void BlockShutdownSignals();
void WaitForShutdownSignal();

}  // namespace redflag

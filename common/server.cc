#include "common/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <csignal>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_metrics.h"

namespace redflag {

void RunningServer::Shutdown(absl::Duration grace) {
  auto deadline = absl::ToChronoTime(absl::Now() + grace);
  if (health) health->Shutdown(deadline);
  server->Shutdown(deadline);
}

absl::StatusOr<RunningServer> StartServer(const ServerOptions& o, int* bound_port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  // The health listener first: when its port is taken, nothing has been served yet. (Started
  // second, its failure came after the main server was taking calls — agents reconnect at
  // once — and destroying that server waits for its calls without a deadline: the process
  // could hang instead of exiting with this error.)
  RunningServer running;
  if (!o.health_address.empty()) {
    grpc::ServerBuilder hb;
    int hport = 0;
    hb.AddListeningPort(o.health_address, grpc::InsecureServerCredentials(), &hport);
    running.health = hb.BuildAndStart();
    if (running.health == nullptr || hport == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", o.health_address));
    }
  }

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(o.address, o.credentials, &port);
  for (grpc::Service* s : o.services) builder.RegisterService(s);

  grpc::ResourceQuota quota("redflag-server");
  quota.Resize(o.memory_quota_bytes);
  quota.SetMaxThreads(o.max_threads);
  builder.SetResourceQuota(quota);

  // Agents ping every 30-60 s: accept pings down to 25 s apart, even on idle streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 25'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             o.max_concurrent_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 4 << 20);

  if (o.metrics != nullptr) {
    // The server owns the factory for its lifetime.
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(std::make_unique<GrpcMetrics>(*o.metrics));
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    if (running.health) running.health->Shutdown(std::chrono::system_clock::now());
    return absl::UnavailableError(absl::StrCat("cannot listen on ", o.address));
  }
  if (bound_port != nullptr) *bound_port = port;
  running.server = std::move(server);
  return running;
}

void BlockShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void WaitForShutdownSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
}

}  // namespace redflag

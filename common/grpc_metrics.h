// Server interceptor recording every RPC: redflag_grpc_server_handled_total{service, method,
// code} and redflag_grpc_server_handling_seconds{service, method} (for streams, the stream's
// lifetime). Label values come from the server's own method table, so they stay bounded.
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>

namespace redflag {

class GrpcMetrics final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit GrpcMetrics(prometheus::Registry& registry);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  prometheus::Family<prometheus::Counter>& handled;
  prometheus::Family<prometheus::Histogram>& latency;
};

}  // namespace redflag

#include "common/grpc_metrics.h"

#include <chrono>
#include <string>

namespace redflag {
namespace {

const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  int i = static_cast<int>(c);
  return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
}

class Interceptor final : public grpc::experimental::Interceptor {
 public:
  Interceptor(GrpcMetrics& m, const char* full_method) : m_(m) {
    // "/redflag.v1.OperatorService/Login" → service, method
    std::string name = full_method ? full_method : "/unknown/unknown";
    size_t slash = name.rfind('/');
    service_ = name.substr(1, slash - 1);
    method_ = name.substr(slash + 1);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      m_.handled
          .Add({{"service", service_}, {"method", method_}, {"code", CodeName(s.error_code())}})
          .Increment();
      m_.latency
          .Add({{"service", service_}, {"method", method_}},
               prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                       0.5, 1, 2.5, 5, 10, 60, 600, 3600})
          .Observe(seconds);
    }
    methods->Proceed();
  }

 private:
  GrpcMetrics& m_;
  std::string service_, method_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

GrpcMetrics::GrpcMetrics(prometheus::Registry& registry)
    : handled(prometheus::BuildCounter()
                  .Name("redflag_grpc_server_handled_total")
                  .Help("RPCs completed, by service, method and status code")
                  .Register(registry)),
      latency(prometheus::BuildHistogram()
                  .Name("redflag_grpc_server_handling_seconds")
                  .Help("Time from the call's start to its status, by service and method")
                  .Register(registry)) {}

grpc::experimental::Interceptor* GrpcMetrics::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new Interceptor(*this, info->method());
}

}  // namespace redflag

#include "common/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace redflag {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& address) {
  auto m = std::make_unique<MetricsServer>();
  m->registry_ = std::make_shared<prometheus::Registry>();
  try {
    m->exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    // civetweb reports bind failures by throwing; turn that into a status here, once.
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  m->exposer_->RegisterCollectable(m->registry_);
  return m;
}

}  // namespace redflag

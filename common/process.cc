#include "common/process.h"

#include "absl/synchronization/mutex.h"

namespace redflag {

void ConfigureProcess() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace redflag

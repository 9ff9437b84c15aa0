// The `updates` schema's migrations, in order: the signing key ring, then packages and
// deliveries.
#pragma once

#include "absl/status/status.h"
#include "common/pg.h"

namespace redflag::updates {

absl::Status MigrateUpdatesSchema(PgPool& pool);

}  // namespace redflag::updates

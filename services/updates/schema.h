// The `updates` schema's migrations, in order: the signing key ring, then packages and
// deliveries.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/pg.h"

namespace redflag::updates {

// The migrations in order (applied by redflag-migrate as the owner role).
const std::vector<std::string>& UpdatesMigrations();
absl::Status MigrateUpdatesSchema(PgPool& pool);

}  // namespace redflag::updates

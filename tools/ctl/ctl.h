// redflagctl's engine: one command per OperatorService method (named in kebab case:
// ListAgents -> list-agents), its request filled from --field=value flags by protobuf
// reflection, the reply printed as a table (lists), as "field: value" lines (one object) or,
// with --json, as JSON. List commands walk every page unless --page_size or --page_token is
// given. The session token comes from REDFLAG_TOKEN or the file `login` wrote (0600, under
// $XDG_CONFIG_HOME/redflag or ~/.config/redflag).
//
// Exit codes: 0 done; 1 the server failed (UNAVAILABLE, INTERNAL, ...); 2 usage, or the
// server refused the input (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE,
// ALREADY_EXISTS); 3 verify-audit found the chain broken; 4 authentication or permission
// (UNAUTHENTICATED, PERMISSION_DENIED, or no token); 5 not found. Not thread-safe (one run per
// process).
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace redflag::ctl {

enum ExitCode : int {
  kOk = 0,
  kServerError = 1,
  kUsage = 2,
  kAuditBroken = 3,
  kAuthentication = 4,
  kNotFound = 5,
};

// Runs one command line (args[0] is the program name). Output goes to `out`, errors and
// progress to `err`.
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace redflag::ctl

// redflagctl: the operators' command line for the gateway (every OperatorService call; see
// tools/ctl/ctl.h and `redflagctl --help`).
#include <iostream>
#include <string>
#include <vector>

#include "tools/ctl/ctl.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return redflag::ctl::Run(args, std::cout, std::cerr);
}

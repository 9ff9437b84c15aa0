// For fuzz targets that parse protobuf bytes: invalid UTF-8 in string fields is refused by the
// parser, which logs each refusal and slows the run several-fold. Include in exactly one
// translation unit per target (it defines libFuzzer's initialiser).
#pragma once

#include "google/protobuf/stubs/logging.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

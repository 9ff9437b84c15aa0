#include "agent/config_file.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace redflag::agent {

absl::StatusOr<v1::AgentConfigFile> ReadConfigFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("config ", path, ": ", std::strerror(errno)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "config %s is mode %04o; it may hold secrets and must be 0600 (chmod 600 %s)", path,
        st.st_mode & 07777, path));
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigFile(ss.str(), path);
}

absl::StatusOr<v1::AgentConfigFile> ParseConfigFile(const std::string& json,
                                                    const std::string& path) {
  v1::AgentConfigFile config;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;  // a misspelt key is an error, not a silent default
  auto s = google::protobuf::util::JsonStringToMessage(json, &config, opts);
  if (!s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", s.message().as_string()));
  }
  return config;
}

absl::Status WriteConfigFile(const std::string& path, const v1::AgentConfigFile& config) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(config, &json, opts);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  bool ok =
      write(fd, json.data(), json.size()) == static_cast<ssize_t>(json.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace redflag::agent

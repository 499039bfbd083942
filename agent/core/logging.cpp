#include "agent/core/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace meshos {

Result<spdlog::level::level_enum> parseLogLevel(std::string_view level) {
  if (level == "trace") return spdlog::level::trace;
  if (level == "debug") return spdlog::level::debug;
  if (level == "info") return spdlog::level::info;
  if (level == "warn") return spdlog::level::warn;
  if (level == "error") return spdlog::level::err;
  if (level == "off") return spdlog::level::off;
  return Status::invalid("log level must be one of trace, debug, info, warn, error, off; got \"" +
                         std::string(level) + "\"");
}

Status setupLogging(std::string_view level, std::string_view format) {
  auto lvl = parseLogLevel(level);
  if (!lvl) return lvl.status();
  if (format != "text" && format != "json") {
    return Status::invalid("log format must be text or json; got \"" + std::string(format) + "\"");
  }
  spdlog::drop("meshos");  // set up again (a test, a reload): the new settings win
  auto logger = spdlog::stderr_color_mt("meshos");
  if (format == "json") {
    logger->set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","pid":%P,"msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(*lvl);
  spdlog::set_default_logger(logger);
  return Status::ok();
}

}  // namespace meshos

// Logging setup: one spdlog logger to stderr, its level and format chosen by config or
// flags. Called once by main(); libraries log through spdlog's default logger.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

#include "agent/core/status.h"

namespace meshos {

// level: trace | debug | info | warn | error | off. format: text | json.
Status setupLogging(std::string_view level, std::string_view format = "text");
Result<spdlog::level::level_enum> parseLogLevel(std::string_view level);

}  // namespace meshos

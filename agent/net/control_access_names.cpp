// [control] role lists to ids (control_access_names.h).
#include "agent/net/control_access_names.h"

#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <optional>
#include <vector>

namespace meshos {

namespace {

std::optional<uint32_t> number(std::string_view s) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint32_t> userId(const std::string& name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
  return found->pw_uid;
}

std::optional<uint32_t> groupId(const std::string& name) {
  std::vector<char> buf(65536);
  group gr{};
  group* found = nullptr;
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
  return found->gr_gid;
}

Result<control::Principals> resolveList(std::string_view list, const std::vector<std::string>& entries) {
  control::Principals p;
  for (const std::string& e : entries) {
    if (e == "*") {
      p.anyone = true;
      continue;
    }
    const bool is_group = e[0] == '%';
    const std::string name = is_group ? e.substr(1) : e;
    std::optional<uint32_t> id = number(name);
    if (!id) id = is_group ? groupId(name) : userId(name);
    if (!id) {
      return Status::invalid("[control] " + std::string(list) + ": no " + (is_group ? "group" : "user") + " \"" +
                             name + "\" on this host");
    }
    (is_group ? p.gids : p.uids).insert(*id);
  }
  return p;
}

}  // namespace

Result<control::AccessPolicy> resolveControlAccess(const config::ControlSection& section, uid_t agent_uid) {
  control::AccessPolicy policy;
  policy.agent_uid = agent_uid;
  auto readers = resolveList("readers", section.readers);
  if (!readers) return readers.status();
  auto operators = resolveList("operators", section.operators);
  if (!operators) return operators.status();
  auto admins = resolveList("admins", section.admins);
  if (!admins) return admins.status();
  policy.readers = std::move(*readers);
  policy.operators = std::move(*operators);
  policy.admins = std::move(*admins);
  return policy;
}

}  // namespace meshos

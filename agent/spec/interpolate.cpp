#include "agent/spec/interpolate.h"

#include <functional>

namespace meshos::spec {

namespace {

bool knownForm(std::string_view name) {
  if (name == "node.host" || name == "node.name" || name == "node.id") return true;
  constexpr std::string_view kLabel = "node.label.";
  return name.size() > kLabel.size() && name.substr(0, kLabel.size()) == kLabel;
}

// Expands text; with vars == nullptr only checks the syntax and the forms.
Result<std::string> expand(std::string_view text, const std::map<std::string, std::string>* vars) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out.push_back(text[i]);
      continue;
    }
    constexpr std::string_view kOpen = "${node.";
    if (text.substr(i, kOpen.size()) != kOpen) {  // shell-style ${HOME} and lone $ stay as they are
      out.push_back('$');
      continue;
    }
    size_t end = text.find('}', i + 2);
    if (end == std::string_view::npos) return Status::invalid("unterminated ${ in \"" + std::string(text) + "\"");
    std::string name(text.substr(i + 2, end - i - 2));
    if (!knownForm(name)) {
      return Status::invalid("unknown variable ${" + name +
                             "} (known: ${node.host}, ${node.name}, ${node.id}, ${node.label.KEY})");
    }
    if (vars) {
      auto it = vars->find(name);
      if (it == vars->end()) return Status::invalid("${" + name + "} has no value on this node");
      out += it->second;
    }
    i = end;
  }
  return out;
}

// Applies fn to every interpolated field, naming it in errors.
Status eachField(DaemonSpec& s, const std::function<Status(std::string&, std::string_view field)>& fn) {
  for (size_t i = 0; i < s.command.size(); ++i) {
    MESHOS_RETURN_IF_ERROR(fn(s.command[i], "command[" + std::to_string(i) + "]"));
  }
  for (auto& [k, v] : s.env) MESHOS_RETURN_IF_ERROR(fn(v, "env." + k));
  MESHOS_RETURN_IF_ERROR(fn(s.workdir, "workdir"));
  for (auto* check : {&s.health.startup, &s.health.liveness, &s.health.readiness}) {
    if (!*check) continue;
    auto& c = **check;
    for (auto& arg : c.command) MESHOS_RETURN_IF_ERROR(fn(arg, "health check command"));
    MESHOS_RETURN_IF_ERROR(fn(c.host, "health check host"));
    MESHOS_RETURN_IF_ERROR(fn(c.path, "health check path"));
  }
  return Status::ok();
}

}  // namespace

Result<std::string> interpolateText(std::string_view text, const std::map<std::string, std::string>& vars) {
  return expand(text, &vars);
}

Result<DaemonSpec> interpolate(const DaemonSpec& spec, const std::map<std::string, std::string>& vars) {
  DaemonSpec out = spec;
  Status s = eachField(out, [&](std::string& value, std::string_view field) {
    auto r = expand(value, &vars);
    if (!r) return r.status().withContext(std::string(field));
    value = std::move(*r);
    return Status::ok();
  });
  if (!s) return s.withContext("daemon '" + spec.name + "'");
  return out;
}

Status checkVariables(const DaemonSpec& spec) {
  DaemonSpec copy = spec;
  return eachField(copy, [](std::string& value, std::string_view field) {
    auto r = expand(value, nullptr);
    return r ? Status::ok() : r.status().withContext(std::string(field));
  });
}

}  // namespace meshos::spec

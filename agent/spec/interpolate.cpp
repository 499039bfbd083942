#include "agent/spec/interpolate.h"

#include <algorithm>
#include <functional>

namespace meshos::spec {

namespace {

bool knownForm(std::string_view name, const std::vector<Port>& ports) {
  if (name == "node.host" || name == "node.name" || name == "node.id") return true;
  constexpr std::string_view kLabel = "node.label.";
  if (name.size() > kLabel.size() && name.substr(0, kLabel.size()) == kLabel) return true;
  return std::any_of(ports.begin(), ports.end(), [&](const Port& p) { return name == "port." + p.name; });
}

// Expands text; with vars == nullptr only checks the syntax and the forms.
Result<std::string> expand(std::string_view text, const std::map<std::string, std::string>* vars,
                           const std::vector<Port>& ports) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out.push_back(text[i]);
      continue;
    }
    if (text.substr(i, 7) != "${node." && text.substr(i, 7) != "${port.") {  // shell-style ${HOME} and lone $ stay as they are
      out.push_back('$');
      continue;
    }
    size_t end = text.find('}', i + 2);
    if (end == std::string_view::npos) return Status::invalid("unterminated ${ in \"" + std::string(text) + "\"");
    std::string name(text.substr(i + 2, end - i - 2));
    if (!knownForm(name, ports)) {
      return Status::invalid("unknown variable ${" + name +
                             "} (known: ${node.host}, ${node.name}, ${node.id}, ${node.label.KEY}, ${port.NAME} of a declared port)");
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
  return expand(text, &vars, {});
}

Result<DaemonSpec> interpolate(const DaemonSpec& spec, const std::map<std::string, std::string>& node_vars) {
  DaemonSpec out = spec;
  std::map<std::string, std::string> vars = node_vars;
  for (const auto& p : spec.ports) vars["port." + p.name] = std::to_string(p.port);
  Status s = eachField(out, [&](std::string& value, std::string_view field) {
    auto r = expand(value, &vars, spec.ports);
    if (!r) return r.status().withContext(std::string(field));
    value = std::move(*r);
    return Status::ok();
  });
  if (!s) return s.withContext("daemon '" + spec.name + "'");
  return out;
}

Status checkVariables(const DaemonSpec& spec) {
  DaemonSpec copy = spec;
  return eachField(copy, [&spec](std::string& value, std::string_view field) {
    auto r = expand(value, nullptr, spec.ports);
    return r ? Status::ok() : r.status().withContext(std::string(field));
  });
}

}  // namespace meshos::spec

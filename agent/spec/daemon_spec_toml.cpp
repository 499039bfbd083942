// DaemonSpec from TOML: a file of [[daemon]] tables, read strictly (config::TomlTable).
#include "agent/spec/daemon_spec.h"

#include <toml++/toml.h>

#include <algorithm>
#include <set>

#include "agent/spec/spec_tables.h"

namespace meshos::spec {

using namespace detail;

// TOML.

namespace {

void readCheck(const toml::table& t, std::string_view source, const std::string& path,
               HealthCheck& c, Status* err) {
  TomlTable r(t, source, path, err);
  if (t.get("type") == nullptr) {
    r.failHere("type", "missing (exec | tcp | http)");
    return;
  }
  r.enumeration("type", c.type, kCheckTypes);
  r.strings("command", c.command);
  r.str("host", c.host);
  r.integer("port", c.port, kPort);
  r.str("path", c.path);
  r.integer("interval_ms", c.interval_ms, kPositiveMs);
  r.integer("timeout_ms", c.timeout_ms, kPositiveMs);
  r.integer("failure_threshold", c.failure_threshold, kThreshold);
  r.integer("success_threshold", c.success_threshold, kThreshold);
  r.integer("initial_delay_ms", c.initial_delay_ms, kDelayMs);
  r.finish();
}

// One constraint table: {label = ..., equals | in | not_in = ...}.
bool readConstraint(const toml::node& e, std::string_view source, const std::string& path, Constraint& k,
                    Status* err) {
  TomlTable c(*e.as_table(), source, path, err);
  c.str("label", k.label);
  int ops = 0;
  if (e.as_table()->get("equals") != nullptr) {
    std::string v;
    c.str("equals", v);
    k.op = ConstraintOp::kEquals;
    k.values = {v};
    ++ops;
  }
  if (e.as_table()->get("in") != nullptr) {
    c.strings("in", k.values);
    k.op = ConstraintOp::kIn;
    ++ops;
  }
  if (e.as_table()->get("not_in") != nullptr) {
    c.strings("not_in", k.values);
    k.op = ConstraintOp::kNotIn;
    ++ops;
  }
  if (ops != 1 && !c.failed()) c.failAt(e.source(), "", "a constraint needs exactly one of equals, in, not_in");
  if (k.label.empty() && !c.failed()) c.failAt(e.source(), "label", "missing");
  c.finish();
  return !c.failed();
}

void readPlacement(TomlTable& r, std::string_view source, Placement& p, Status* err) {
  const toml::table* x = r.table("placement");
  if (x == nullptr) return;
  TomlTable q(*x, source, r.childPath("placement"), err);
  q.enumeration("strategy", p.strategy, kStrategies);
  q.str("near", p.near);
  q.strings("capabilities", p.capabilities);
  q.integer("max_per_node", p.max_per_node, kPerNode);
  const toml::node* cons = q.get("constraints");
  if (cons != nullptr && !q.failed()) {
    if (!cons->is_array()) {
      q.failAt(cons->source(), "constraints", "expected an array of tables");
    } else {
      for (const auto& e : *cons->as_array()) {
        if (!e.is_table()) {
          q.failAt(e.source(), "constraints", "expected a table {label = ..., equals = ...}");
          break;
        }
        Constraint k;
        if (!readConstraint(e, source, r.childPath("placement") + "constraints.", k, err)) break;
        p.constraints.push_back(std::move(k));
      }
    }
  }
  q.finish();
}

// Reads the sub-table `key` of r when it is there: fill(q), then unknown keys are errors.
template <typename Fill>
void subTable(TomlTable& r, std::string_view source, std::string_view key, Status* err, Fill fill) {
  const toml::table* x = r.table(key);
  if (x == nullptr) return;
  TomlTable q(*x, source, r.childPath(key), err);
  fill(q);
  q.finish();
}

// resources, backoff, crash_loop, limits, permissions, update, supervision, container, logs:
// flat tables.
void readNumbers(TomlTable& r, std::string_view source, DaemonSpec& s, Status* err) {
  subTable(r, source, "resources", err, [&](TomlTable& q) {
    q.integer("cpu_millicores", s.resources.cpu_millicores, kMillicores);
    q.integer("memory_bytes", s.resources.memory_bytes, kBytes);
  });
  subTable(r, source, "backoff", err, [&](TomlTable& q) {
    q.integer("initial_ms", s.backoff.initial_ms, kDelayMs);
    q.real("factor", s.backoff.factor, 1.0, 100.0);
    q.integer("max_ms", s.backoff.max_ms, kDelayMs);
    q.real("jitter", s.backoff.jitter, 0.0, 1.0);
    q.integer("reset_after_ms", s.backoff.reset_after_ms, kDelayMs);
  });
  subTable(r, source, "crash_loop", err, [&](TomlTable& q) {
    q.integer("max_crashes", s.crash_loop.max_crashes, kCrashes);
    q.integer("window_ms", s.crash_loop.window_ms, kPositiveMs);
    q.integer("cooldown_ms", s.crash_loop.cooldown_ms, kWeekMs);
  });
  subTable(r, source, "limits", err, [&](TomlTable& q) {
    q.optInteger("open_files", s.limits.open_files, kOpenFiles);
    q.optInteger("core_size", s.limits.core_size, kBytes);
    q.optInteger("memory_max", s.limits.memory_max, kMemoryMax);
    q.optInteger("cpu_max_millicores", s.limits.cpu_max_millicores, kCpuMax);
    q.optInteger("pids_max", s.limits.pids_max, kPidsMax);
    q.enumeration("limits", s.limits.mode, kLimitsModes);
  });
  subTable(r, source, "permissions", err, [&](TomlTable& q) {
    q.boolean("allow_stop", s.permissions.allow_stop);
    q.boolean("allow_restart", s.permissions.allow_restart);
    q.boolean("allow_exec", s.permissions.allow_exec);
    if (const toml::node* n = q.get("allowed_signals"); n != nullptr && !q.failed()) {
      std::vector<std::pair<std::string, const toml::node*>> names;
      q.stringNodes("allowed_signals", names);
      std::vector<int> signals;
      for (const auto& [name, node] : names) {
        if (q.failed()) break;
        auto sig = signalNumber(name);
        if (!sig) {
          q.fail(node, "allowed_signals", sig.status().message());
          break;
        }
        signals.push_back(*sig);
      }
      std::sort(signals.begin(), signals.end());
      signals.erase(std::unique(signals.begin(), signals.end()), signals.end());
      s.permissions.allowed_signals = std::move(signals);
    }
  });
  subTable(r, source, "update", err, [&](TomlTable& q) {
    q.integer("max_unavailable", s.update.max_unavailable, kMaxUnavailable);
    q.integer("min_ready_ms", s.update.min_ready_ms, kDelayMs);
    q.integer("progress_deadline_ms", s.update.progress_deadline_ms, kPositiveMs);
    q.enumeration("on_failure", s.update.on_failure, kOnUpdateFailure);
  });
  subTable(r, source, "supervision", err, [&](TomlTable& q) {
    q.str("group", s.supervision.group);
    q.enumeration("strategy", s.supervision.strategy, kGroupStrategies);
    q.integer("restart_intensity", s.supervision.restart_intensity, kIntensity);
    q.integer("restart_window_ms", s.supervision.restart_window_ms, kWindowMs);
    q.boolean("restart_with_dependency", s.supervision.restart_with_dependency);
    q.boolean("critical", s.supervision.critical);
  });
  subTable(r, source, "container", err, [&](TomlTable& q) {
    q.str("rootfs", s.container.rootfs);
    q.str("image", s.container.image);
    q.enumeration("network", s.container.network, kContainerNetworks);
    q.strings("capabilities", s.container.capabilities);
    q.boolean("writable_rootfs", s.container.writable_rootfs);
  });
  subTable(r, source, "logs", err, [&](TomlTable& q) {
    q.integer("max_bytes", s.logs.max_bytes, kLogBytes);
    q.integer("keep_files", s.logs.keep_files, kKeepFiles);
  });
}

void readHealth(TomlTable& r, std::string_view source, HealthChecks& h, Status* err) {
  const toml::table* x = r.table("health");
  if (x == nullptr) return;
  TomlTable q(*x, source, r.childPath("health"), err);
  for (std::string_view which : {"startup", "liveness", "readiness"}) {
    if (const toml::table* c = q.table(which)) {
      HealthCheck hc;
      readCheck(*c, source, q.childPath(which), hc, err);
      if (which == "startup") h.startup = hc;
      else if (which == "liveness") h.liveness = hc;
      else h.readiness = hc;
    }
  }
  q.finish();
}

void readDependencies(TomlTable& r, std::string_view source, std::vector<Dependency>& out, Status* err) {
  const toml::node* deps = r.get("depends_on");
  if (deps == nullptr || r.failed()) return;
  if (!deps->is_array()) return r.failAt(deps->source(), "depends_on", "expected an array of names or tables");
  for (const auto& e : *deps->as_array()) {
    Dependency d;
    if (e.is_string()) {
      d.name = e.as_string()->get();
    } else if (e.is_table()) {
      TomlTable q(*e.as_table(), source, r.childPath("depends_on"), err);
      if (e.as_table()->get("name") == nullptr) q.failAt(e.source(), "name", "missing");
      q.str("name", d.name);
      q.enumeration("condition", d.condition, kConditions);
      q.integer("timeout_ms", d.timeout_ms, kDelayMs);
      q.enumeration("on_timeout", d.on_timeout, kOnTimeouts);
      q.finish();
    } else {
      r.failAt(e.source(), "depends_on", "expected a name or a table {name = ...}");
    }
    if (r.failed()) break;
    out.push_back(std::move(d));
  }
}

// ports = [{ name = "http", port = 8080, protocol = "tcp" }]
void readPorts(TomlTable& r, std::string_view source, std::vector<Port>& out, Status* err) {
  const toml::node* ports = r.get("ports");
  if (ports == nullptr || r.failed()) return;
  if (!ports->is_array()) return r.failAt(ports->source(), "ports", "expected an array of tables {name = ..., port = ...}");
  for (const auto& e : *ports->as_array()) {
    if (!e.is_table()) return r.failAt(e.source(), "ports", "expected a table {name = ..., port = ...}");
    Port p;
    TomlTable q(*e.as_table(), source, r.childPath("ports"), err);
    if (e.as_table()->get("name") == nullptr) q.failAt(e.source(), "name", "missing");
    if (e.as_table()->get("port") == nullptr) q.failAt(e.source(), "port", "missing");
    q.str("name", p.name);
    q.integer("port", p.port, kPort);
    q.enumeration("protocol", p.protocol, kProtocols);
    q.finish();
    if (r.failed() || q.failed()) return;
    out.push_back(std::move(p));
  }
}

void readDaemon(const toml::table& t, std::string_view source, DaemonSpec& s, Status* err) {
  std::string who = "daemon: ";
  if (const toml::node* n = t.get("name"); n != nullptr && n->is_string()) {
    who = "daemon '" + std::string(n->as_string()->get()) + "': ";
  }
  TomlTable r(t, source, who, err);
  r.str("name", s.name);
  r.enumeration("kind", s.kind, kKinds);
  r.strings("command", s.command);
  if (const toml::table* env = r.table("env")) {
    for (const auto& [k, v] : *env) {
      if (v.is_string()) {
        s.env[std::string(k.str())] = v.as_string()->get();
        continue;
      }
      const toml::table* ref = v.as_table();
      const toml::node* name = ref ? ref->get("secret") : nullptr;
      if (ref == nullptr || ref->size() != 1 || name == nullptr || !name->is_string()) {
        return r.failAt(v.source(), "env." + std::string(k.str()), "expected a string or { secret = \"NAME\" }");
      }
      s.secrets.env[std::string(k.str())] = name->as_string()->get();
    }
  }
  r.strings("secret_files", s.secrets.files);
  r.str("workdir", s.workdir);
  r.str("user", s.user);
  r.integer("replicas", s.replicas, kReplicas);
  r.str("schedule", s.schedule);
  r.integers("success_exit_codes", s.success_exit_codes, kExitCode);
  r.str("stop_signal", s.stop_signal);
  r.integer("stop_grace_ms", s.stop_grace_ms, kGraceMs);
  r.integer("job_retries", s.job_retries, kRetries);
  r.enumeration("missed_runs", s.missed_runs, kMissed);
  r.enumeration("restart", s.restart, kPolicies);
  r.enumeration("runtime", s.runtime, kRuntimeKinds);
  readNumbers(r, source, s, err);
  readPlacement(r, source, s.placement, err);
  readHealth(r, source, s.health, err);
  readDependencies(r, source, s.depends_on, err);
  readPorts(r, source, s.ports, err);
  r.finish();
}

}  // namespace

Result<std::vector<DaemonSpec>> parseDaemonsToml(std::string_view text,
                                                 std::string_view source_name) {
  toml::table root;
  try {
    root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return Status::invalid(std::string(source_name) + ":" +
                           std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
  Status err;
  for (const auto& [k, v] : root) {
    if (k.str() != "daemon") {
      return Status::invalid(std::string(source_name) + ":" + std::to_string(k.source().begin.line) +
                             ": " + std::string(k.str()) +
                             ": unknown key (a daemons file holds [[daemon]] tables)");
    }
  }
  std::vector<DaemonSpec> specs;
  const toml::node* list = root.get("daemon");
  if (list == nullptr) return specs;
  if (!list->is_array_of_tables()) {
    return Status::invalid(std::string(source_name) + ":" +
                           std::to_string(list->source().begin.line) +
                           ": daemon: expected [[daemon]] tables");
  }
  for (const auto& node : *list->as_array()) {
    const toml::table& t = *node.as_table();
    DaemonSpec s;
    readDaemon(t, source_name, s, &err);
    if (!err) return err;
    const std::string where =
        std::string(source_name) + ":" + std::to_string(t.source().begin.line);
    if (t.get("name") == nullptr) return Status::invalid(where + ": name: missing");
    if (t.get("command") == nullptr) {
      return Status::invalid(where + ": daemon '" + s.name + "': command: missing");
    }
    Status v = validate(s);
    if (!v) return v.withContext(where);
    specs.push_back(std::move(s));
  }
  Status set = validateSet(specs);
  if (!set) return set.withContext(source_name);
  return specs;
}

}  // namespace meshos::spec


# Daemon specs: what a commit or a local daemons file asks a node to run (agent/runtime,
# agent/commits). Field ordinals are append-only.
# Mirrors agent/spec/daemon_spec.h; agent/spec converts both ways (toCapnp / fromCapnp).
# Durations are milliseconds, sizes bytes. A limit of -1 means "unset".
@0xa12cb5739f9d8cb2;
$import "/capnp/c++.capnp".namespace("meshos::proto");

enum DaemonKind { service @0; job @1; cron @2; }
enum RestartPolicy { always @0; onFailure @1; never @2; }
enum PlacementStrategy { spread @0; binpack @1; near @2; }
enum ConstraintOp { equals @0; in @1; notIn @2; }
enum CheckType { exec @0; tcp @1; http @2; }
enum DependencyCondition { started @0; healthy @1; ready @2; }
enum OnTimeout { fail @0; warn @1; continue @2; }
enum MissedRunPolicy { skip @0; runOnce @1; }
# What a limit the node cannot apply means: the start fails (enforce), or the instance runs
# without it and shows a warning (bestEffort).
enum LimitsMode { enforce @0; bestEffort @1; }

struct EnvVar {
  key @0 :Text;
  value @1 :Text;
}

struct Constraint {
  label @0 :Text;
  op @1 :ConstraintOp;
  values @2 :List(Text);
}

struct HealthCheck {
  type @0 :CheckType;
  command @1 :List(Text);
  host @2 :Text;
  port @3 :Int64;
  path @4 :Text;
  intervalMs @5 :Int64;
  timeoutMs @6 :Int64;
  failureThreshold @7 :Int64;
  successThreshold @8 :Int64;
  initialDelayMs @9 :Int64;
}

struct Dependency {
  name @0 :Text;
  condition @1 :DependencyCondition;
  timeoutMs @2 :Int64;
  onTimeout @3 :OnTimeout;
}

struct DaemonSpec {
  name @0 :Text;
  kind @1 :DaemonKind;
  command @2 :List(Text);
  env @3 :List(EnvVar);
  workdir @4 :Text;
  user @5 :Text;
  replicas @6 :Int64;
  schedule @7 :Text;

  cpuMillicores @8 :Int64;
  memoryBytes @9 :Int64;

  strategy @10 :PlacementStrategy;
  near @11 :Text;
  constraints @12 :List(Constraint);
  capabilities @13 :List(Text);
  maxPerNode @14 :Int64;

  restart @15 :RestartPolicy;
  backoffInitialMs @16 :Int64;
  backoffFactor @17 :Float64;
  backoffMaxMs @18 :Int64;
  backoffJitter @19 :Float64;
  backoffResetAfterMs @20 :Int64;

  crashLoopMaxCrashes @21 :Int64;
  crashLoopWindowMs @22 :Int64;
  crashLoopCooldownMs @23 :Int64;

  successExitCodes @24 :List(Int64);

  # Absent (null) pointer = no such check.
  startup @25 :HealthCheck;
  liveness @26 :HealthCheck;
  readiness @27 :HealthCheck;

  dependsOn @28 :List(Dependency);

  stopSignal @29 :Text;
  stopGraceMs @30 :Int64;

  openFiles @31 :Int64 = -1;
  coreSize @32 :Int64 = -1;
  memoryMax @33 :Int64 = -1;
  cpuMaxMillicores @34 :Int64 = -1;
  pidsMax @35 :Int64 = -1;

  logMaxBytes @36 :Int64;
  logKeepFiles @37 :Int64;

  jobRetries @38 :Int64;
  missedRuns @39 :MissedRunPolicy;

  limitsMode @40 :LimitsMode;  # [daemon.limits] limits = "enforce" | "best-effort"

  permissions @41 :Permissions;  # null: everything allowed (the defaults)

  ports @42 :List(Port);  # null when none (a spec without ports keeps its canonical bytes)

  update @43 :UpdateStrategy;  # null: the defaults

  supervision @44 :Supervision;  # null: the defaults (no group)

  secrets @45 :SecretUses;  # null: none

  runtime @46 :RuntimeKind;     # process (the default) or oci
  container @47 :Container;     # null: the defaults (runtime = "oci" needs one)
}

enum RuntimeKind { process @0; oci @1; }
enum ContainerNetwork { host @0; none @1; }

# [daemon.container]: what a daemon with runtime = "oci" runs in (docs/RUNTIME.md).
struct Container {
  rootfs @0 :Text;
  image @1 :Text;              # "<OCI layout path>:<tag>"
  network @2 :ContainerNetwork;
  capabilities @3 :List(Text);
  writableRootfs @4 :Bool;
}

# Sealed secrets a daemon reads (names only; docs/SECRETS.md).
struct SecretUses {
  env @0 :List(EnvVar);        # key: the variable, value: the secret's name
  files @1 :List(Text);        # secret names written to $MESHOS_SECRETS_DIR
  versions @2 :List(SecretVersion);  # set by the desired-state fold
}

struct SecretVersion {
  name @0 :Text;
  seq @1 :UInt64;              # the commit that last sealed it
}

enum GroupStrategy { oneForOne @0; oneForAll @1; restForOne @2; }

# [daemon.supervision]: groups, their strategy and restart intensity.
struct Supervision {
  group @0 :Text;
  strategy @1 :GroupStrategy;
  restartIntensity @2 :Int64;
  restartWindowMs @3 :Int64;
  restartWithDependency @4 :Bool;
  critical @5 :Bool;           # quarantined: the node is unhealthy for placement
}

enum OnUpdateFailure { pause @0; rollback @1; }

# [daemon.update]: how a changed spec rolls out.
struct UpdateStrategy {
  maxUnavailable @0 :Int64;
  minReadyMs @1 :Int64;
  progressDeadlineMs @2 :Int64;
  onFailure @3 :OnUpdateFailure;
}

enum PortProtocol { tcp @0; udp @1; }

struct Port {
  name @0 :Text;
  port @1 :UInt16;
  protocol @2 :PortProtocol;
}

# [daemon.permissions], stored as what is forbidden so the defaults encode as nothing (and
# a spec without the table keeps its canonical bytes).
struct Permissions {
  forbidStop @0 :Bool;
  forbidRestart @1 :Bool;
  forbidExec @2 :Bool;
  signalsRestricted @3 :Bool;        # only allowedSignals may be sent
  allowedSignals @4 :List(Int32);
}

# A whole desired set, e.g. the daemons of one commit or one local file.
struct DaemonSet {
  daemons @0 :List(DaemonSpec);
}

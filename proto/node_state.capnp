# Node state: what each node disseminates about itself by gossip (agent/gossip carries the
# bytes; agent/state/node_report.h encodes and decodes them). Newer version per origin wins.
# Field ordinals are append-only.
@0xc7ddd9de3775ccb4;
$import "/capnp/c++.capnp".namespace("meshos::proto");

enum Maintenance { active @0; draining @1; inMaintenance @2; }

struct Label {
  key @0 :Text;
  value @1 :Text;
}

# Network coordinate (Vivaldi): a Euclidean vector plus a height, in milliseconds.
struct Coordinate {
  vec @0 :List(Float64);
  height @1 :Float64;
  adjustment @2 :Float64;
  error @3 :Float64;
}

struct Inventory {
  cpuCount @0 :UInt32;
  load1 @1 :Float64;
  memoryTotalBytes @2 :Int64;
  memoryUsedBytes @3 :Int64;
  diskTotalBytes @4 :Int64;
  diskUsedBytes @5 :Int64;
  arch @6 :Text;
  os @7 :Text;
}

# One daemon of the commit log as this node runs it.
struct DaemonReport {
  name @0 :Text;
  running @1 :UInt32;     # instances started and not yet stopped
  ready @2 :UInt32;       # of those, ready (readiness check passing, or running without one)
  generation @3 :UInt64;  # the desired entry's updated_seq this node runs
  readySince @4 :Int64;   # wall-clock ms since which some instance here is ready; 0: none is
  version @5 :UInt64;     # the spec version it runs (reconcile::specVersion), for rollouts
  failedVersion @6 :UInt64;  # a version that did not get ready here in time: the rollout stops
}

# An instance this node hands to a cooler node (the Rebalancer, on live load). Every node
# applies the moves each node publishes about itself, so all agree on the overlay.
struct Move {
  daemon @0 :Text;
  to @1 :Text;  # node id
}

struct NodeState {
  version @0 :Text;                 # software version
  labels @1 :List(Label);
  capabilities @2 :List(Text);      # sorted: [node] capabilities plus detected arch:, os:, cpus:
  cpuMillicores @3 :Int64;          # capacity offered to placement
  memoryBytes @4 :Int64;
  maintenance @5 :Maintenance;
  maintenanceSeq @6 :UInt64;        # the commit whose maintenance op this state answers
  coordinate @7 :Coordinate;        # null until RTT samples arrived
  commitSeq @8 :UInt64;
  commitHash @9 :Data;              # 32 bytes
  daemons @10 :List(DaemonReport);  # sorted by name
  inventory @11 :Inventory;
  instances @12 :UInt32;            # every local instance (local daemons included)
  ready @13 :UInt32;
  isolated @14 :Bool;               # sees fewer than half the members it knew: starts nothing
  moves @15 :List(Move);            # sorted by daemon; at most one per daemon
  viewDigest @16 :UInt64;           # the placement view this node plans from (see planLocal)
  storageFailing @17 :Bool;
  unhealthy @18 :Text;              # a critical daemon is quarantined: why ("" = healthy)         # its chain writes fail (disk full, I/O error): degraded
}

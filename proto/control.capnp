# The control socket protocol (agent/net/control_server, tools/inspect, tools/admin).
#
# Framing: each message is a 4-byte big-endian length followed by that many bytes of one
# Cap'n Proto message (standard unpacked serialisation). A request larger than 1 MiB is
# refused. One reply per request, in order (a watch answers with a stream of replies,
# one per event, and takes its connection). Field ordinals are append-only.
@0xc954238aaa370011;
$import "/capnp/c++.capnp".namespace("meshos::proto");

struct Request {
  id @0 :UInt64;          # echoed in the reply
  reason @1 :Text;        # why the operator asks; recorded in the audit chain with the caller
  union {
    snapshot @2 :Void;
    metrics @3 :Void;
    members @4 :Void;
    daemons @5 :Void;
    chainVerify @6 :ChainRange;
    chainTail @7 :ChainRange;
    join @8 :List(Text);              # host:port addresses to join
    keyring @9 :KeyringOp;
    submitCommit @10 :Data;           # a signed commit (commit.capnp Commit)
    getCommits @11 :CommitRange;
    commitHead @12 :Void;
    daemonControl @13 :DaemonControl;
    daemonLogs @14 :DaemonLogs;
    placement @15 :Text;              # daemon name, or empty for all
    ping @16 :Void;
    chainShow @17 :ChainRange;        # from = 0: the chain's state; else that record
    watch @18 :Text;                  # event kinds, "members,daemons"; empty: all. Replies
                                      # stream (one JSON event each) until the client closes
    leave @19 :Void;                  # this agent leaves the cluster and stops
    forceLeave @20 :Text;             # a dead member's name: declared left everywhere
    reload @21 :Void;                 # read the config file again (as SIGHUP does)
    endpoints @22 :Text;              # daemon name, or empty for all: its ready instances
    rollout @23 :Text;                # daemon name: its rollout as this node sees it
  }
}

struct ChainRange {
  chain @0 :Text;          # audit | log | failure
  from @1 :UInt64;         # first seq (0: from the start / genesis)
  count @2 :UInt64;        # 0: to the end
}

struct CommitRange {
  from @0 :UInt64;
  to @1 :UInt64;
}

struct KeyringOp {
  union {
    list @0 :Void;
    install @1 :Data;        # 32-byte key
    use @2 :Data;            # make this installed key primary
    remove @3 :Data;
  }
}

struct DaemonControl {
  name @0 :Text;
  instance @1 :Text;       # empty: every instance of the daemon on this node
  op @2 :Op;
  argv @3 :List(Text);     # for exec
  signal @4 :Text;         # for signal: "HUP", "SIGUSR1" or a number
  enum Op {
    restart @0;
    pause @1;
    resume @2;
    quarantine @3;
    stop @4;
    exec @5;
    start @6;
    trigger @7;            # run a job / cron now
    signal @8;             # send a signal to the instances' process groups
    enable @9;             # a cron daemon fires again (missed fires per its missed_runs)
    disable @10;           # a cron daemon stops firing (a run in progress goes on)
  }
}

struct DaemonLogs {
  name @0 :Text;
  instance @1 :Text;
  tailLines @2 :UInt32;
  offset @3 :UInt64;       # for --follow: bytes already seen
}

struct Reply {
  id @0 :UInt64;
  union {
    error @1 :Error;
    json @2 :Text;          # a JSON object, the same document `--json` prints
    text @3 :Text;          # plain text (Prometheus metrics, logs)
  }
}

struct Error {
  code @0 :Text;            # codeName() of agent/core/status.h: "invalid argument", ...
  message @1 :Text;
}

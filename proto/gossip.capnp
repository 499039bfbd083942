# Gossip packets and streams (agent/gossip). Field ordinals are append-only.
#
# A UDP packet is one Packet (packed encoding) inside the keyring envelope (see
# agent/gossip/keyring.h). A TCP stream carries length-prefixed frames, each one
# StreamFrame inside the same envelope. Node ids are the 16-hex-char ids of
# agent/core/node_identity.h; addresses are "host:port".
@0x98317e86297fbac7;
$import "/capnp/c++.capnp".namespace("meshos::proto");

struct GossipPing {
  seqNo @0 :UInt32;
  targetId @1 :Text;       # the node the sender means to reach; a mismatch is ignored
  sourceAddress @2 :Text;  # where to send the ack
  sourceId @3 :Text;
}

struct GossipIndirectPing {
  seqNo @0 :UInt32;
  targetId @1 :Text;
  targetAddress @2 :Text;
  wantNack @3 :Bool;
  sourceAddress @4 :Text;
}

struct GossipAck {
  seqNo @0 :UInt32;
}

struct GossipNack {
  seqNo @0 :UInt32;
}

struct GossipAlive {
  incarnation @0 :UInt64;
  id @1 :Text;
  name @2 :Text;
  address @3 :Text;
  publicKey @4 :Data;
}

struct GossipSuspect {
  incarnation @0 :UInt64;
  id @1 :Text;
  from @2 :Text;           # id of the accuser
}

struct GossipDead {
  incarnation @0 :UInt64;
  id @1 :Text;
  from @2 :Text;           # id of the accuser; from == id means a graceful leave
}

struct GossipNodeState {
  origin @0 :Text;         # node id
  version @1 :UInt64;
  hasBody @2 :Bool;        # false: an announcement only; fetch the body by push-pull
  body @3 :Data;
}

struct GossipMessage {
  union {
    ping @0 :GossipPing;
    indirectPing @1 :GossipIndirectPing;
    ack @2 :GossipAck;
    nack @3 :GossipNack;
    alive @4 :GossipAlive;
    suspect @5 :GossipSuspect;
    dead @6 :GossipDead;
    nodeState @7 :GossipNodeState;
  }
}

struct GossipPacket {
  messages @0 :List(GossipMessage);
}

enum GossipMemberState {
  alive @0;
  suspect @1;
  dead @2;
  left @3;
}

struct GossipMemberRecord {
  id @0 :Text;
  name @1 :Text;
  address @2 :Text;
  publicKey @3 :Data;
  incarnation @4 :UInt64;
  state @5 :GossipMemberState;
}

struct GossipPushPull {
  join @0 :Bool;
  members @1 :List(GossipMemberRecord);
  states @2 :List(GossipNodeState);
}

struct GossipStreamFrame {
  union {
    pushPull @0 :GossipPushPull;
    ping @1 :GossipPing;
    ack @2 :GossipAck;
    appRequest @3 :GossipAppRequest;
    appReply @4 :GossipAppReply;
  }
}

# Application channels over the gossip TCP stream (GossipService::onAppStream /
# requestApp): one request frame, one reply frame, sealed like every other frame.
struct GossipAppRequest {
  channel @0 :Text;        # e.g. "commits.push"; an unknown channel gets an error reply
  sourceId @1 :Text;       # the sender's node id
  sourceAddress @2 :Text;  # the sender's advertised gossip address
  body @3 :Data;
}

struct GossipAppReply {
  ok @0 :Bool;
  errorCode @1 :Text;      # when !ok: a Status code name ("invalid-argument", ...)
  errorMessage @2 :Text;
  body @3 :Data;           # when ok
}

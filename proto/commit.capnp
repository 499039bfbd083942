# Signed admin commits (agent/commits). Field ordinals are append-only.
#
# A Commit is a CommitBody plus signatures. What is signed, and what the commit hash is
# computed over, is the same byte string:
#
#   "meshos-commit-v1" 0x00 || capnp::canonicalize(body)
#
# (the canonical Cap'n Proto encoding of the CommitBody struct: one segment, no far
# pointers, fields in ordinal order, trailing zero words trimmed). The commit hash is
# BLAKE2b-256 of that string. Signatures are not part of the hash, so co-signing a commit
# does not change its identity. A key id is the signer's 32-byte ed25519 public key.
@0xaee172fe40587336;
$import "/capnp/c++.capnp".namespace("meshos::proto");

using Spec = import "spec.capnp";

struct Commit {
  body @0 :CommitBody;
  signatures @1 :List(CommitSignature);
}

struct CommitBody {
  clusterId @0 :Text;          # the [gossip] cluster of the nodes that may accept it
  seq @1 :UInt64;              # 1 for the first commit
  parent @2 :Data;             # 32 bytes: the hash of commit seq-1; 32 zero bytes for seq 1
  issuedAtMs @3 :Int64;        # wall clock of the issuer, ms since the Unix epoch
  issuer @4 :Data;             # key id (32-byte public key) of the admin who built it
  operations @5 :List(Operation);
  note @6 :Text;               # free text shown by `meshos-admin show` and in the audit
}

struct CommitSignature {
  keyId @0 :Data;              # 32-byte ed25519 public key
  signature @1 :Data;          # 64-byte ed25519 signature over the signed string above
}

struct Operation {
  union {
    putDaemon @0 :Spec.DaemonSpec;     # create or replace a daemon (validated like a file)
    removeDaemon @1 :Text;             # daemon name
    scale @2 :Scale;
    pauseDaemon @3 :Text;
    resumeDaemon @4 :Text;
    setMaintenance @5 :Maintenance;
    freeze @6 :Freeze;
    thaw @7 :Void;
    forceRestart @8 :Text;             # daemon name: every instance restarts once
    killRelocation @9 :Text;           # daemon name: abandon its relocations in flight
    addAdminKey @10 :Data;             # 32-byte ed25519 public key
    removeAdminKey @11 :Data;
    setThreshold @12 :UInt32;
    putSecret @13 :Secret;             # create or rotate a sealed secret (docs/SECRETS.md)
    removeSecret @14 :Text;            # secret name; refused while a daemon uses it
  }
}

# A secret sealed (libsodium crypto_box_seal) to each recipient that may open it.
struct Secret {
  name @0 :Text;
  copies @1 :List(SealedCopy);
}

struct SealedCopy {
  to @0 :Recipient;
  key @1 :Data;                # 32 bytes: the node's ed25519 key, or the cluster's X25519 key
  box @2 :Data;                # sealed "meshos-secret-v1" 0x00 name 0x00 value
  enum Recipient {
    node @0;
    cluster @1;
  }
}

struct Scale {
  daemon @0 :Text;
  replicas @1 :Int64;
}

struct Maintenance {
  node @0 :Text;               # node name
  mode @1 :Mode;
  deadlineMs @2 :Int64;        # drain: wall-clock ms by which the node must be empty
  enum Mode {
    active @0;                 # leave maintenance
    drain @1;                  # move everything off, then stay empty
  }
}

struct Freeze {
  expiresAtMs @0 :Int64;       # absolute wall-clock ms; the freeze ends by itself then
  reason @1 :Text;
}

# Commit spreading between agents (agent/commits/commit_sync.h), on the gossip app
# channels "commits.get" (range fetch) and "commits.push" (new commits pushed at once).
struct CommitRangeRequest {
  from @0 :UInt64;             # first seq wanted, >= 1
  to @1 :UInt64;               # last seq wanted, inclusive; the server caps the count
}

struct CommitRangeReply {
  commits @0 :List(Data);      # encoded commits of the server's chain, by seq
  headSeq @1 :UInt64;          # the server's head
  headHash @2 :Data;
}

struct CommitPush {
  commits @0 :List(Data);      # encoded commits that just joined the sender's chain
}

struct CommitPushReply {
  accepted @0 :UInt32;         # how many joined the receiver's chain
  headSeq @1 :UInt64;          # the receiver's head afterwards
  headHash @2 :Data;
}

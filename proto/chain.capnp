# Hash-chain records and heads as stored in RocksDB (chains/). Owned by chains/.
# Field ordinals are append-only. The full on-disk format (keys, hash and signature
# encodings) is described in chains/chain_format.h and docs/CHAINS.md.
@0xa1c04cb88be4d335;
$import "/capnp/c++.capnp".namespace("meshos::proto");

# One record of a chain, stored under key 'r' + big-endian seq.
struct ChainRecord {
  seq @0 :UInt64;        # 1, 2, 3, ... without gaps
  timeMs @1 :Int64;      # wall-clock ms when appended
  kind @2 :Text;         # what the record is about ("agent.start", "daemon.exit", ...)
  payload @3 :Data;      # the record body (the writer's choice of encoding)
  prevHash @4 :Data;     # 32 bytes: hash of record seq-1 (or of the genesis checkpoint)
  hash @5 :Data;         # 32 bytes: BLAKE2b-256 of the fields above (see chain_format.h)
}

# The newest record of a chain, stored under key 'h', written in the same batch as it.
struct ChainHead {
  seq @0 :UInt64;
  hash @1 :Data;         # 32 bytes
}

# A signed statement "chain <chain> had head <hash> at <seq>", stored under
# 'c' + big-endian seq; after pruning, the one at the oldest kept record's seq-1 is also
# stored under 'g' (genesis).
struct ChainCheckpoint {
  chain @0 :Text;
  seq @1 :UInt64;
  headHash @2 :Data;     # 32 bytes
  timeMs @3 :Int64;
  signer @4 :Data;       # 32-byte ed25519 public key of the node that signed
  signature @5 :Data;    # 64 bytes, over the checkpoint message (see chain_format.h)
}

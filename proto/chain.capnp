# Hash-chain records and heads as stored in RocksDB (chains/). Owned by chains/.
# Field ordinals are append-only.
@0xa1c04cb88be4d335;
$import "/capnp/c++.capnp".namespace("meshos::proto");

# Signed admin commits (agent/commits). Field ordinals are append-only.
@0xaee172fe40587336;
$import "/capnp/c++.capnp".namespace("meshos::proto");

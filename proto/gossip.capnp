# Gossip packets and streams (agent/gossip). Field ordinals are append-only.
@0x98317e86297fbac7;
$import "/capnp/c++.capnp".namespace("meshos::proto");

# Daemon specs: what a commit or a local daemons file asks a node to run (agent/runtime,
# agent/commits). Field ordinals are append-only.
@0xa12cb5739f9d8cb2;
$import "/capnp/c++.capnp".namespace("meshos::proto");

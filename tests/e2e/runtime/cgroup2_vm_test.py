#!/usr/bin/env python3
"""Limits on a real cgroup v2 kernel, from a host that has none.

A Debian host may hold its memory, cpu and pids controllers in cgroup v1 hierarchies (this
project's CI machine does: its cgroup2 mount offers no controllers), and a controller
cannot move to cgroup2 while any v1 group uses it. So this test boots Debian's own kernel
under QEMU (software emulation, no network device), with an initramfs it writes itself:
busybox, the modules that mount the host's root read-only over virtio-9p, and an init
that mounts a pure cgroup2 hierarchy at /sys/fs/cgroup, chroots into the host's root and
runs the same limits test the host runs (e2e_runtime_limits), with MESHOS_LIMITS_REQUIRE=2:
every controller must be on cgroup v2 there, or the test fails instead of skipping. Then the
whole agent's memory hog test (agent_daemons_test.py): a real meshos-agent, its daemon killed
at memory_max, and the kill in its failure chain.

Needs root (the guest reads the host's root as root), qemu-system-x86_64 and a kernel
unpacked by `tools/dev test` (MESHOS_VM_KERNEL, default ~/.cache/meshos/vm-kernel: vmlinuz,
and modules/ with the modules and their load order, `order`).
Without them it says what is missing and is skipped (exit 77).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
BOOT_TIMEOUT_S = 240
DONE = "MESHOS-VM-EXIT"


def modules(kernel):
    """The modules to load, in load order, as tools/dev listed them."""
    with open(os.path.join(kernel, "modules", "order")) as f:
        return f.read().split()


def kernel_dir():
    return os.environ.get("MESHOS_VM_KERNEL") or os.path.expanduser("~/.cache/meshos/vm-kernel")


def cpio_newc(entries):
    """An uncompressed initramfs: (name, mode, data) in the kernel's "newc" cpio format."""
    out = bytearray()

    def pad4():
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        raw = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        pad4()
        out += data
        pad4()
    return bytes(out)


def guest_steps(limits_test):
    """What runs in the guest, each a name and a shell command: the runtime's limits test,
    then the whole agent's memory hog test (its kill in the failure chain)."""
    here = os.path.dirname(os.path.abspath(__file__))
    agent_test = os.path.join(here, "..", "node", "agent_daemons_test.py")
    hog = "test_a_memory_hog_is_killed_at_its_limit_and_recorded"
    return [
        ("limits", f"MESHOS_LIMITS_REQUIRE=2 {limits_test} --duration=true --no-version=true --no-colors=true"),
        ("agent-hog", f"MESHOS_E2E_ONLY={hog} MESHOS_AGENT={os.environ.get('MESHOS_AGENT', '')} "
                      f"MESHOS_INSPECT={os.environ.get('MESHOS_INSPECT', '')} python3 {os.path.normpath(agent_test)}"),
    ]


def init_script(steps, names):
    inserts = "\n".join(f"insmod /mods/{m}.ko || fail 'insmod {m}'" for m in names)
    runs = "\n".join(f"chroot /host /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/tmp HOME=/tmp "
                     f"/bin/sh -c '{command}'\necho \"{DONE} {name} $?\"" for name, command in steps)
    # The guest's own /proc, /sys, /dev and /tmp cover the host's in the chroot; cgroup2
    # alone at /sys/fs/cgroup, as on a pure v2 host, with every controller free for it.
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
fail() {{ echo "$1"; echo "{DONE} init 99"; poweroff -f; }}
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || fail mounts
ip link set lo up || fail 'loopback'
{inserts}
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /host || fail '9p mount'
mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && mount -t devtmpfs dev /host/dev \\
  && mount -t cgroup2 cgroup2 /host/sys/fs/cgroup && mount -t tmpfs tmp /host/tmp || fail 'chroot mounts'
echo "guest cgroup2 controllers: $(cat /host/sys/fs/cgroup/cgroup.controllers)"
{runs}
poweroff -f
"""


def initramfs(kernel, steps):
    busybox = shutil.which("busybox")
    with open(busybox, "rb") as f:
        entries = [("bin", 0o40755, b""), ("bin/busybox", 0o100755, f.read())]
    for d in ("proc", "sys", "dev", "host", "mods"):
        entries.append((d, 0o40755, b""))
    names = modules(kernel)
    for m in names:
        with open(os.path.join(kernel, "modules", m + ".ko"), "rb") as f:
            entries.append((f"mods/{m}.ko", 0o100644, f.read()))
    entries.append(("init", 0o100755, init_script(steps, names).encode()))
    return cpio_newc(entries)


def missing_requirements(kernel, limits_test):
    if os.geteuid() != 0:
        return "not root"
    for tool in ("qemu-system-x86_64", "busybox"):
        if shutil.which(tool) is None:
            return f"no {tool} (tools/dev deps installs it)"
    if not os.path.isfile(os.path.join(kernel, "vmlinuz")) or not os.path.isfile(os.path.join(kernel, "modules", "order")):
        return f"no kernel in {kernel} (tools/dev test unpacks one)"
    for var, path in (("MESHOS_LIMITS_TEST", limits_test), ("MESHOS_AGENT", os.environ.get("MESHOS_AGENT")),
                      ("MESHOS_INSPECT", os.environ.get("MESHOS_INSPECT"))):
        if not path or not os.path.isfile(path):
            return f"{var} does not name a built binary"
    return None


def boot(kernel, steps, work):
    image = os.path.join(work, "initramfs.cpio")
    with open(image, "wb") as f:
        f.write(initramfs(kernel, steps))
    console = os.path.join(work, "console.log")
    cmd = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-nic", "none",
           "-display", "none", "-no-reboot", "-serial", f"file:{console}",
           "-kernel", os.path.join(kernel, "vmlinuz"), "-initrd", image,
           "-append", "console=ttyS0 quiet panic=-1",
           "-virtfs", "local,path=/,mount_tag=host,security_model=none,readonly=on"]
    started = time.monotonic()
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = qemu.communicate(timeout=BOOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        err = b"(timed out)"
    finally:
        if qemu.poll() is None:  # ended by pid, with its process group
            os.killpg(qemu.pid, signal.SIGKILL)
            qemu.wait()
    with open(console, errors="replace") as f:
        text = f.read()
    return text, err.decode(errors="replace"), time.monotonic() - started


def main():
    kernel = kernel_dir()
    limits_test = os.environ.get("MESHOS_LIMITS_TEST", "")
    why = missing_requirements(kernel, limits_test)
    if why:
        print(f"cgroup v2 VM test skipped: {why}")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="meshos-vm-") as work:
        steps = guest_steps(limits_test)
        console, err, seconds = boot(kernel, steps, work)
    print(console)
    print(f"VM ran {seconds:.1f} s")
    exits = dict(line.split()[1:3] for line in console.splitlines() if line.startswith(DONE + " "))
    if exits != {name: "0" for name, _ in steps}:
        print(f"FAIL: not every step passed in the VM (exits: {exits or 'none'}); qemu: {err}")
        return 1
    offered = [line.split(":", 1)[1].split() for line in console.splitlines()
               if line.startswith("guest cgroup2 controllers:")]
    if not offered or not {"memory", "pids", "cpu"} <= set(offered[0]):
        print(f"FAIL: the guest's cgroup2 lacks a controller: {offered}")
        return 1
    print("ok: memory, pids and cpu limits hold on cgroup v2; the agent records a kill at memory_max")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Containers (`runtime = "oci"`, docs/RUNTIME.md "Containers"), end to end with the real
agent and runc, on a root filesystem the test makes from Debian's busybox-static: a
container daemon starts and is ready by an exec check run inside it; killed, it is
restarted; its memory limit is enforced (a hog is killed at it, and the exit says so);
and after the agent is SIGKILLed the next agent re-adopts it with the same pid. And the
example (examples/container.toml) runs from the image its script builds. Skipped (exit 77)
without root, runc or busybox."""
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import FAST_BACKOFF, Workspace, free_port, run_tests, wait_for  # noqa: E402

SKIP = 77
BUSYBOX = "/bin/busybox"


def why_skipped():
    if os.geteuid() != 0:
        return "containers need root"
    if shutil.which("runc") is None:
        return "no runc (apt-get install runc)"
    if not os.path.exists(BUSYBOX) or not _static(BUSYBOX):
        return "no static busybox (apt-get install busybox-static)"
    return ""


def _static(path):
    # Without `file`: a static binary has no PT_INTERP program header.
    with open(path, "rb") as f:
        return b"/lib64/ld-linux" not in f.read(1 << 20)


def make_rootfs(root):
    rootfs = os.path.join(root, "rootfs")
    for d in ("bin", "etc", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for tool in ("sh", "sleep", "cat", "id", "dd", "echo", "ls"):
        os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    return rootfs


def instances(a):
    return {d["instance"]: d for d in a.inspect_json("daemons")["daemons"]}


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def end_containers(a):
    """The test ends what it started: every container in this agent's runc state."""
    state = os.path.join(a.dir, "data", "runtime", "oci", "state")
    if not os.path.isdir(state):
        return
    for cid in os.listdir(state):
        subprocess.run(["runc", "--root", state, "delete", "--force", cid], capture_output=True, timeout=30)


def test_a_container_runs_restarts_is_limited_and_readopted():
    with Workspace() as ws:
        rootfs = make_rootfs(ws.root)
        a = ws.agent("n1", '[runtime]\nlocal = "local.toml"\n')
        with open(os.path.join(a.dir, "local.toml"), "w") as f:
            f.write(f"""[[daemon]]
name = "web"
runtime = "oci"
command = ["/bin/sh", "-c", "echo up as $(id -u) in $MESHOS_INSTANCE; trap 'echo bye; exit 0' TERM; while true; do sleep 1; done", "{ws.root}"]
user = "nobody"
restart = "always"
stop_grace_ms = 2000
{FAST_BACKOFF}[daemon.container]
rootfs = "{rootfs}"
network = "none"
[daemon.limits]
memory_max = 50331648
[daemon.health.readiness]
type = "exec"
command = ["/bin/sh", "-c", "id -u | grep -qx 65534 && ls /sys/class/net | grep -qx lo"]
interval_ms = 300

[[daemon]]
name = "hog"
runtime = "oci"
command = ["/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"]
restart = "never"
[daemon.container]
rootfs = "{rootfs}"
[daemon.limits]
memory_max = 33554432
""")
        try:
            a.start()
            # Ready by the exec check inside: it sees uid 65534 and only loopback.
            wait_for(lambda: instances(a).get("web#0", {}).get("ready") is True, 20, "web#0 ready")
            web = instances(a)["web#0"]
            assert web["pid"] > 0 and alive(web["pid"]), web
            wait_for(lambda: "up as 65534 in web#0" in a.inspect("logs", "web#0").stdout, 5, "web's first line in its log")
            out = a.inspect("--reason", "e2e", "daemon", "exec", "web#0", "--", "/bin/cat", "/proc/1/cmdline").stdout
            assert "while true" in out, out  # inside: pid 1 is the container's own shell
            assert web["runtime"] == "oci", web
            # The node tells placement it can run containers.
            wait_for(lambda: "runtime:oci" in a.inspect_json("members")["members"][0].get("capabilities", []), 10,
                     "runtime:oci among n1's capabilities")

            # A pause freezes the whole container (runc's freezer), a resume thaws it.
            state_dir = os.path.join(a.dir, "data", "runtime", "oci", "state")
            def runc_status():
                r = subprocess.run(["runc", "--root", state_dir, "state", "web+0"], capture_output=True, text=True)
                return json.loads(r.stdout)["status"] if r.returncode == 0 else r.stderr
            a.inspect("--reason", "e2e", "daemon", "pause", "web")
            wait_for(lambda: runc_status() == "paused", 10, "web+0 paused")
            a.inspect("--reason", "e2e", "daemon", "resume", "web")
            wait_for(lambda: runc_status() == "running", 10, "web+0 running again")

            # The memory limit: the hog is killed at it, and its exit says so.
            wait_for(lambda: "memory limit" in instances(a).get("hog#0", {}).get("last_exit", ""), 20,
                     "hog killed at its memory limit")

            # Crash: killed from outside, restarted by policy, ready again with a new pid.
            os.kill(web["pid"], signal.SIGKILL)
            wait_for(lambda: instances(a)["web#0"]["restarts"] == 1 and instances(a)["web#0"]["ready"] is True
                     and instances(a)["web#0"]["pid"] != web["pid"], 20, "web#0 restarted and ready")
            web = instances(a)["web#0"]
            assert "SIGKILL" in web["last_exit"] or "signal 9" in web["last_exit"], web

            # The agent is SIGKILLed: the container runs on, and is re-adopted with its pid.
            a.proc.kill()
            a.proc.wait()
            assert alive(web["pid"]), "the container died with the agent"
            a.start()
            wait_for(lambda: instances(a).get("web#0", {}).get("ready") is True, 20, "web#0 ready after re-adoption")
            after = instances(a)["web#0"]
            # The same pid, adopted; the new agent counts no restart for it.
            assert after["pid"] == web["pid"] and after["adopted"] is True and after["restarts"] == 0, after

            # A stop reaches it through the agent: graceful (its TERM trap), and the container is gone.
            a.inspect("--reason", "e2e", "daemon", "stop", "web#0")
            wait_for(lambda: not alive(after["pid"]), 10, "web#0's container to end")
            wait_for(lambda: "bye" in a.inspect("logs", "web#0").stdout, 5, "web's TERM trap in its log")
            assert a.stop() == 0
        finally:
            end_containers(a)


def test_the_example_runs_from_its_image():
    """examples/make-busybox-image.sh builds the layout; examples/container.toml runs from it
    (on a free port): unpacked into the store, ready by its HTTP check, serving its page."""
    if shutil.which("umoci") is None:
        print("skipped: no umoci (apt-get install umoci)")
        return
    here = os.path.dirname(os.path.abspath(__file__))
    examples = os.path.join(here, "..", "..", "..", "examples")
    with Workspace() as ws:
        layout = os.path.join(ws.root, "image")
        made = subprocess.run([os.path.join(examples, "make-busybox-image.sh"), layout],
                              capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        port = free_port()
        with open(os.path.join(examples, "container.toml")) as f:
            text = f.read().replace("/var/tmp/meshos-busybox:latest", made.stdout.strip()).replace("8081", str(port))
        a = ws.agent("n1", '[runtime]\nlocal = "local.toml"\n')
        with open(os.path.join(a.dir, "local.toml"), "w") as f:
            f.write(text)
        try:
            a.start()
            wait_for(lambda: instances(a).get("httpd#0", {}).get("ready") is True, 30, "httpd#0 ready")
            page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            assert "hello from a meshos container" in page, page
            store = os.path.join(a.dir, "data", "runtime", "oci", "images")
            assert len(os.listdir(store)) == 1, os.listdir(store)
            wait_for(lambda: instances(a)["httpd#0"]["liveness"] == "passing", 10, "the exec liveness check inside")
            assert a.stop() == 0
        finally:
            end_containers(a)


if __name__ == "__main__":
    why = why_skipped()
    if why:
        print(f"skipped: {why}")
        raise SystemExit(SKIP)
    run_tests([test_a_container_runs_restarts_is_limited_and_readopted, test_the_example_runs_from_its_image])

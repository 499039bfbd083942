"""`tools/dev deb` builds a Debian package that lintian passes without errors, holding the
binaries, the systemd unit, the example config (a conffile) and the docs; the packaged
agent runs and accepts the packaged config."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import run_tests  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.environ["MESHOS_BUILD_DIR"]


def run(*args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
    return r.stdout


def test_the_deb_builds_lints_clean_and_holds_what_it_should():
    out = tempfile.mkdtemp(prefix="meshos-deb-")
    try:
        env = dict(os.environ, MESHOS_BUILD_DIR=BUILD)
        run(os.path.join(ROOT, "tools", "dev"), "deb", out, env=env)
        debs = [f for f in os.listdir(out) if f.endswith(".deb")]
        assert len(debs) == 1 and debs[0].startswith("meshos_0.") and debs[0].endswith(".deb"), debs
        deb = os.path.join(out, debs[0])
        listing = run("dpkg-deb", "-c", deb)
        files = {line.split()[-1] for line in listing.splitlines()}
        for want in ("./usr/bin/meshos-agent", "./usr/bin/meshos-admin", "./usr/bin/meshos-inspect",
                     "./lib/systemd/system/meshos-agent.service", "./etc/meshos/node.toml",
                     "./usr/share/doc/meshos/README.md", "./usr/share/doc/meshos/copyright",
                     "./usr/share/doc/meshos/changelog.gz", "./usr/share/doc/meshos/docs/ARCHITECTURE.md",
                     "./usr/share/doc/meshos/examples/web.toml"):
            assert want in files, f"{want} not in the package:\n{listing}"
        assert not any(f.startswith("./usr/local") for f in files), listing
        depends = run("dpkg-deb", "-f", deb, "Depends")
        for lib in ("libuv1", "librocksdb", "libsodium", "libsystemd0", "libhttp-parser", "libc6"):
            assert lib in depends, f"Depends lacks {lib}: {depends}"
        assert run("dpkg-deb", "--ctrl-tarfile", deb) is not None
        root = os.path.join(out, "root")
        run("dpkg-deb", "-x", deb, root)
        agent = os.path.join(root, "usr", "bin", "meshos-agent")
        assert run(agent, "--version").startswith("meshos-agent ")
        assert "ok" in run(agent, "--config", os.path.join(root, "etc", "meshos", "node.toml"), "--check")
        assert "not stripped" not in run("file", agent)
        unit = open(os.path.join(root, "lib", "systemd", "system", "meshos-agent.service")).read()
        for line in ("Type=notify", "KillMode=process", "WatchdogSec=", "ExecReload=",
                     "ExecStart=/usr/bin/meshos-agent --config /etc/meshos/node.toml"):
            assert line in unit, f"the unit lacks {line}"
        print(f"{debs[0]}: {os.path.getsize(deb) // 1024} KiB, lintian clean, Depends: {depends.strip()}", flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_the_deb_builds_lints_clean_and_holds_what_it_should])

"""The status page in a real browser: headless Chromium (Debian's `chromium`), driven over
the DevTools protocol on a pipe, reads / from the first of 3 agents. The page must list the
three members and the daemon's replicas, then show a SIGKILLed member going down without a
reload (a marker set in the page survives), and a screenshot is saved to the test's output.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lib import Workspace, admin, run_tests, submit, wait_for  # noqa: E402
from http_test import FAST, free_port_tcp  # noqa: E402

SECRET = "s3cret-token-value"
SVC = '[[daemon]]\nname = "svc"\ncommand = ["/bin/sleep", "3600"]\nreplicas = 3\nstop_grace_ms = 200\n' \
      f'env = {{ API_TOKEN = "{SECRET}" }}\n' \
      '[daemon.placement]\nstrategy = "spread"\nmax_per_node = 1\n'
OUTPUT = os.environ.get("MESHOS_TEST_OUTPUT", tempfile.gettempdir())


class Browser:
    """Chromium with --remote-debugging-pipe: JSON messages ended by NUL on fds 3 (in) and 4 (out)."""

    def __init__(self):
        chromium = shutil.which("chromium")
        assert chromium, "chromium is missing: apt-get install chromium (tools/dev test installs it)"
        self.profile = tempfile.mkdtemp(prefix="meshos-chromium-")
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()

        def fds():  # after the fork: the pipe ends onto 3 and 4 (close_fds would close them again)
            read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
             f"--user-data-dir={self.profile}", "--window-size=1200,900", "about:blank"],
            close_fds=False, preexec_fn=fds, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r)
        os.close(from_child_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def send(self, method, params=None, timeout_s=20):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" not in self.buf:
                assert time.monotonic() < deadline, f"chromium did not answer {method}"
                chunk = os.read(self.from_child, 1 << 20)
                assert chunk, "chromium closed the pipe"
                self.buf += chunk
            raw, self.buf = self.buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply["result"]

    def open(self, url):
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def eval(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        os.close(self.to_child)
        os.close(self.from_child)
        shutil.rmtree(self.profile, ignore_errors=True)


ROWS = """JSON.stringify(Array.from(document.querySelectorAll('#%s tbody tr')).map(
  tr => Array.from(tr.cells).map(td => td.textContent)))"""


def table(browser, name):
    return json.loads(browser.eval(ROWS % name) or "[]")


def test_the_status_page_follows_the_cluster_in_chromium():
    with Workspace() as ws:
        key = os.path.join(ws.root, "alice")
        pub = admin("keygen", key).stdout.strip()
        agents = []
        for i in range(1, 4):
            a = ws.agent(f"n{i}")
            gossip = FAST + (f'\nseeds = ["127.0.0.1:{agents[0].port}"]' if agents else "")
            a.set_keys("gossip", gossip)
            a.set_keys("trust", f'admins = ["{pub}"]\nthreshold = 1')
            if i == 1:
                a.http_port = free_port_tcp()
                a.set_keys("control", f'http = "127.0.0.1:{a.http_port}"')
            agents.append(a.start())
        n1, _, n3 = agents
        spec = os.path.join(ws.root, "svc.toml")
        with open(spec, "w") as f:
            f.write(SVC)
        commit = os.path.join(ws.root, "svc.commit")
        admin("sign-commit", "--key", key + ".key", "--file", spec, "--agent", n1.socket, "-o", commit)
        assert submit(n1, commit)["outcome"] == "accepted"
        # HTTP has no roles: the environment's values are never served.
        for path in ("/v1/commits", "/v1/snapshot", "/v1/placement", "/v1/daemons"):
            with urllib.request.urlopen(f"http://127.0.0.1:{n1.http_port}{path}", timeout=10) as r:
                body = r.read().decode()
            assert SECRET not in body, f"{path} serves the environment's value"
        assert '"API_TOKEN": "<redacted>"' in json.dumps(
            json.loads(urllib.request.urlopen(f"http://127.0.0.1:{n1.http_port}/v1/commits", timeout=10).read()))
        browser = Browser()
        try:
            browser.open(f"http://127.0.0.1:{n1.http_port}/")
            members = wait_for(lambda: (lambda t: t if len(t) == 3 and all(r[2] == "alive" for r in t) else None)(
                table(browser, "members")), 20, "the page to list 3 alive members")
            assert [r[0] for r in members] == ["n1", "n2", "n3"], members
            svc = wait_for(lambda: [r for r in table(browser, "daemons") if r[0] == "svc" and r[1] == "3 / 3 ready"],
                           30, "the page to show svc with 3 of 3 replicas ready")
            assert svc[0][3] == "n1, n2, n3", svc
            browser.eval("window.__not_reloaded = 42")
            n3.proc.send_signal(signal.SIGKILL)
            n3.proc.wait()
            started = time.monotonic()
            row = wait_for(lambda: [r for r in table(browser, "members") if r[0] == "n3" and r[2] in ("suspect", "dead")],
                           20, "the page to show n3 down")
            seen_s = time.monotonic() - started
            assert browser.eval("window.__not_reloaded") == 42, "the page was reloaded"
            wait_for(lambda: [r for r in table(browser, "members") if r[0] == "n3" and r[2] == "dead"], 30,
                     "the page to show n3 dead")
            shot = os.path.join(OUTPUT, "status_page.png")
            browser.screenshot(shot)
            assert os.path.getsize(shot) > 10_000, "the screenshot is empty"
            print(f"page showed n3 {row[0][2]} {seen_s:.1f} s after SIGKILL, without a reload; screenshot {shot}",
                  flush=True)
        finally:
            browser.close()


if __name__ == "__main__":
    run_tests([test_the_status_page_follows_the_cluster_in_chromium])

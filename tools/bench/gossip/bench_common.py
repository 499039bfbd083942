"""What side_by_side.py measures the same way for both systems: member views over time, CPU
and memory of a process."""
import os
import statistics
import threading
import time


class Watch:
    """Each agent's member view ({name: state}, or None while it does not answer) over time.
    Only changes are kept, with the monotonic time they were seen."""

    def __init__(self, n):
        self.lock = threading.Lock()
        self.history = [[] for _ in range(n)]
        self._stop = threading.Event()
        self._thread = None

    def feed(self, t, i, view):
        with self.lock:
            h = self.history[i]
            if not h or h[-1][1] != view:
                h.append((t, view))

    def run_polling(self, view_of, interval_s):
        """Polls view_of(i) for every agent in turn, every interval_s, in a thread."""
        self._stop.clear()

        def loop():
            while not self._stop.is_set():
                start = time.monotonic()
                for i in range(len(self.history)):
                    v = view_of(i)
                    self.feed(time.monotonic(), i, v)
                self._stop.wait(max(0.0, interval_s - (time.monotonic() - start)))

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def first_time(self, i, since, pred):
        """When agent i's view first met pred at or after `since` (the view in effect at
        `since` counts from `since`); None if not yet."""
        with self.lock:
            h = list(self.history[i])
        in_effect = None
        for t, v in h:
            if t <= since:
                in_effect = v
                continue
            if in_effect is not None and pred(in_effect):
                return since
            in_effect = None
            if v is not None and pred(v):
                return t
        return since if in_effect is not None and pred(in_effect) else None

    def wait_all(self, viewers, since, pred, timeout_s, what):
        """Seconds from `since` until every viewer met pred (the last of them)."""
        deadline = time.monotonic() + timeout_s
        while True:
            times = [self.first_time(i, since, pred) for i in viewers]
            if all(t is not None for t in times):
                return max(times) - since
            if time.monotonic() > deadline:
                late = [i for i, t in zip(viewers, times) if t is None]
                last = {i: (self.history[i][-1][1] if self.history[i] else None) for i in late[:3]}
                raise SystemExit(f"{what}: not reached within {timeout_s}s by agents {late}; last views {last}")
            time.sleep(0.05)


def cpu_seconds(pid):
    """CPU time of every thread of the process, in nanosecond steps (schedstat): clock-tick
    counts (stat) are 10 ms steps, as coarse as a 0.05 % reading over 20 s."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended meanwhile
    return total / 1e9


def memory_kib(pid):
    """Private memory (RssAnon: the heap and stacks only this process has) and PSS (its
    share of every page it maps), in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                out["private"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["pss"] = int(line.split()[1])
    return out


def idle_figures(pids, idle_s):
    """CPU % of a core per process over idle_s, then private memory and PSS (MiB)."""
    first = [cpu_seconds(p) for p in pids]
    t0 = time.monotonic()
    time.sleep(idle_s)
    dt = time.monotonic() - t0
    cpu = [100.0 * (cpu_seconds(p) - f) / dt for p, f in zip(pids, first)]
    mem = [memory_kib(p) for p in pids]
    return {"cpu": cpu, "private": [m["private"] / 1024 for m in mem], "pss": [m["pss"] / 1024 for m in mem]}


def kill_all(procs):
    """SIGKILL every process still running (None entries skipped), then reap them all."""
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
    for p in procs:
        if p is not None:
            p.wait(30)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])

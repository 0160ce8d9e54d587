"""BFD at scale: CPU % and flaps of 200 sessions at 100 ms x 3, bgpd and BIRD 2 in one run.

Two network namespaces joined by a veth pair carry N address pairs (10.213.0.0/16: side a
10.213.0.x.., side b 10.213.128.x..). FRR's bfdd (no zebra, no watchfrr) runs in b for the
whole run as the common responder, with one single-hop peer per address pair. Then, one
after the other (the machine has 2 cores; running them together would make each one's
figures depend on the other):

1. **bgpd**: ``python -m bgpd.bfd --sessions FILE`` in a, N sessions;
2. **BIRD 2**: ``protocol bfd`` with N ``neighbor`` lines in a, same addresses.

Each phase: start, wait until all N sessions are Up on both ends, ``--quiet`` seconds, then
the ``--window`` (60 s): the implementation's CPU % (utime + stime delta over wall, from
/proc/PID/stat, also the busiest 1-second sample) and bfdd's; flaps as each side sees
them: bgpd's own counters (``flaps``: times a session left Up; and its state-change
events), BIRD's sessions (state and the time of the last change, which must predate the
window), and FRR's per-peer ``session-down`` counters (the neutral judge: a flap on either
end shows there). At the end the implementation is stopped (bgpd sends AdminDown on every
session, so FRR sees them go down then; that is outside the window).

Run (root; bird2 and frr installed)::

    .venv/bin/python bench/bfd.py                       # 200 sessions, 100 ms x 3, 60 s
    .venv/bin/python bench/bfd.py --sessions 200 --interval-ms 100 --multiplier 3 \\
        --window 60 --impl bgpd,bird --markdown
    .venv/bin/python bench/bfd.py --impl bgpd --window 10 --profile /tmp/bfdprof  # + py-spy

Results go to bench/results/bfd-*.json. Namespaces are ``bfdt-<pid>-*`` and removed at the
end, whatever happens; every process is stopped by the PID started here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "bfd"))
sys.path.insert(0, str(ROOT / "tests"))  # bfd_peers imports tests/needs.py

import common  # noqa: E402
from bfd_peers import (  # noqa: E402
    BgpdBfd,
    BirdBfd,
    FrrBfdd,
    Link,
    Neighbor,
    wait_until,
)


class Sampler:
    """CPU seconds of a process, sampled once a second."""

    def __init__(self, proc) -> None:
        self.proc = proc
        self.samples: list[tuple[float, float]] = []

    def sample(self) -> None:
        self.samples.append((time.monotonic(), self.proc.cpu_seconds()))

    def percent(self) -> float:
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        return 100.0 * (c1 - c0) / (t1 - t0)

    def busiest_second(self) -> float:
        pairs = zip(self.samples, self.samples[1:], strict=False)
        return max(100.0 * (c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in pairs)


def frr_downs(frr: FrrBfdd) -> dict[str, int]:
    return {c["peer"]: c["session-down"] for c in frr.counters()}


def frr_up(frr: FrrBfdd) -> int:
    return sum(1 for p in frr.peers() if p.get("status") == "up")


def window(args, impl_proc, frr) -> dict:
    """Measure ``args.window`` seconds of CPU, and FRR's view of the sessions."""
    time.sleep(args.quiet)
    downs0 = frr_downs(frr)
    s_impl, s_frr = Sampler(impl_proc), Sampler(frr)
    start = time.monotonic()
    s_impl.sample()
    s_frr.sample()
    while time.monotonic() - start < args.window:
        time.sleep(1.0)
        s_impl.sample()
        s_frr.sample()
    downs1 = frr_downs(frr)
    frr_flaps = sum(downs1.get(k, 0) - downs0.get(k, 0) for k in downs1)
    return {
        "cpu_percent": s_impl.percent(),
        "cpu_percent_busiest_second": s_impl.busiest_second(),
        "responder_cpu_percent": s_frr.percent(),
        "frr_session_down_events": frr_flaps,
        "frr_up_at_end": frr_up(frr),
        "window_s": s_impl.samples[-1][0] - s_impl.samples[0][0],
        "window_start": start,
        "window_start_wall": time.time() - (time.monotonic() - start),
    }


def run_bgpd(args, link: Link, frr: FrrBfdd, pairs: list[tuple[str, str]], tmp: Path) -> dict:
    spec = [{"peer": b, "local": a} for a, b in pairs]
    path = tmp / "sessions.json"
    path.write_text(json.dumps(spec))
    interval = f"{args.interval_ms}ms"
    bgpd = BgpdBfd(
        link.a,
        [
            "--sessions",
            str(path),
            "--min-tx",
            interval,
            "--min-rx",
            interval,
            "--multiplier",
            str(args.multiplier),
        ],  # fmt: skip
    )
    try:
        t0 = time.monotonic()
        bgpd.start()

        def all_up():
            snap = bgpd.snapshot()
            return sum(s["state"] == "Up" for s in snap["sessions"]) == len(pairs)

        wait_until(all_up, 60, "all bgpd sessions Up", interval=0.5)
        wait_until(lambda: frr_up(frr) == len(pairs), 60, "all FRR peers Up", interval=0.5)
        settle = time.monotonic() - t0

        flaps0 = sum(s["flaps"] for s in bgpd.snapshot()["sessions"])
        result = window(args, bgpd, frr)
        snap = bgpd.snapshot()
        events = [e for e in bgpd.states() if e["t"] >= result["window_start"] and e["new"] != "Up"]
        if args.profile:
            result["profile"] = profile(args, bgpd.pid)
        result.update(
            own_flaps=sum(s["flaps"] for s in snap["sessions"]) - flaps0,
            settle_s=settle,
            up_at_end=sum(s["state"] == "Up" for s in snap["sessions"]),
            own_down_events=len(events),
            drops=snap["drops"],
            tx_errors=sum(s["tx_errors"] for s in snap["sessions"]),
            pid=bgpd.pid,
        )
        return result
    finally:
        bgpd.close()


def profile(args, pid: int) -> str:
    """``py-spy record`` of bgpd for ``--profile-duration`` s, after the window."""
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bfd-bgpd-{common.timestamp()}.txt"
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    subprocess.run(
        [spy, "record", "--pid", str(pid), "--duration", str(args.profile_duration),
         "--rate", "200", "--format", "raw", "--output", str(path), "--nonblocking"],
        capture_output=True, timeout=args.profile_duration + 60, check=False,
    )  # fmt: skip
    return str(path)


def run_bird(args, link: Link, frr: FrrBfdd, pairs: list[tuple[str, str]], tmp: Path) -> dict:
    bird = BirdBfd(
        link.a,
        link.a_if,
        [Neighbor(b, a) for a, b in pairs],
        interval_ms=args.interval_ms,
        multiplier=args.multiplier,
        router_id=pairs[0][0],
    )
    try:
        t0 = time.monotonic()
        bird.start()
        peers = {b for _, b in pairs}
        wait_until(
            lambda: (
                sum(1 for p, s in bird.sessions().items() if p in peers and s == "Up") == len(pairs)
            ),
            60,
            "all BIRD sessions Up",
            interval=0.5,
        )
        wait_until(lambda: frr_up(frr) == len(pairs), 60, "all FRR peers Up", interval=0.5)
        settle = time.monotonic() - t0
        result = window(args, bird, frr)
        # BIRD keeps no flap counter: a session whose last change ("Since") falls inside the
        # window flapped; one not Up at the end is down.
        sessions = bird.sessions()
        result.update(
            settle_s=settle,
            up_at_end=sum(1 for p, s in sessions.items() if p in peers and s == "Up"),
            own_flaps=bird_changed_since(bird, result["window_start_wall"]),
            own_down_events=sum(1 for p, s in sessions.items() if p in peers and s != "Up"),
            pid=bird.pid,
        )
        return result
    finally:
        bird.close()


def bird_changed_since(bird: BirdBfd, wall: float) -> int:
    """Sessions whose "Since" (HH:MM:SS.mmm today) is after ``wall``."""
    from bfd_peers import BIRDC, run

    out = run(BIRDC, "-s", str(bird.sock), "show", "bfd", "sessions", check=False)
    lt = time.localtime(wall)
    window_clock = lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (wall % 1)
    changed = 0
    for line in out.splitlines():
        words = line.split()
        for w in words:
            if w.count(":") == 2 and w.replace(":", "").replace(".", "").isdigit():
                h, m, s = w.split(":")
                if int(h) * 3600 + int(m) * 60 + float(s) > window_clock:
                    changed += 1
                break
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--multiplier", type=int, default=3)
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--quiet", type=float, default=5.0)
    ap.add_argument("--impl", default="bgpd,bird", help="comma-separated: bgpd, bird")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--profile", help="directory: py-spy bgpd after its window (raw stacks)")
    ap.add_argument("--profile-duration", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/bfd.py needs root (network namespaces)", file=sys.stderr)
        return 2
    common.warn_if_busy()
    impls = [x.strip() for x in args.impl.split(",") if x.strip()]
    link = Link.create(pairs=args.sessions)
    tmp = Path(tempfile.mkdtemp(prefix="bfdt-bench-"))
    pairs = [link.v4(i) for i in range(1, args.sessions + 1)]
    frr = FrrBfdd(
        link.b,
        [Neighbor(a, b) for a, b in pairs],
        interval_ms=args.interval_ms,
        multiplier=args.multiplier,
    )
    results: dict[str, dict] = {}
    try:
        frr.start()
        # bfdd needs a few seconds to set up 200 peers: let it, or the first implementation's
        # settle time would include that.
        wait_until(lambda: len(frr.peers()) == args.sessions, 60, "bfdd's peers", interval=0.5)
        time.sleep(3.0)
        for impl in impls:
            print(f"--- {impl}: {args.sessions} sessions at {args.interval_ms} ms x "
                  f"{args.multiplier}, window {args.window:.0f} s", flush=True)  # fmt: skip
            runner = {"bgpd": run_bgpd, "bird": run_bird}[impl]
            results[impl] = runner(args, link, frr, pairs, tmp)
            print(json.dumps(results[impl], default=str), flush=True)
            # Let FRR see every session go down before the next implementation starts.
            wait_until(lambda: frr_up(frr) == 0, 30, "FRR peers down", interval=0.5)
            time.sleep(2.0)
    finally:
        frr.close()
        link.close()
        shutil.rmtree(tmp, ignore_errors=True)

    headers = ["impl", "sessions Up", "settle", "CPU %", "busiest 1 s", "flaps (own)",
               "down events (FRR)", "bfdd CPU %", "CPU vs BIRD"]  # fmt: skip
    base = results.get("bird", {}).get("cpu_percent")
    rows = []
    for impl, r in results.items():
        ratio = r["cpu_percent"] / base if base else None
        rows.append([
            impl,
            f"{r['up_at_end']}/{args.sessions}",
            common.fmt_seconds(r["settle_s"]),
            f"{r['cpu_percent']:.1f}",
            f"{r['cpu_percent_busiest_second']:.1f}",
            f"{r['own_flaps']} ({r['own_down_events']} down)",
            str(r["frr_session_down_events"]),
            f"{r['responder_cpu_percent']:.1f}",
            common.fmt_ratio(ratio),
        ])  # fmt: skip
    print()
    if args.markdown:
        print(common.markdown_table(headers, rows))
    else:
        common.print_table(headers, rows)
    path = common.write_results(
        "bfd",
        {
            "params": vars(args),
            "results": results,
            "git_paths": ["bgpd/bfd", "bench/bfd.py"],
        },
    )
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

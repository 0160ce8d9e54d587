"""FIB programming: bgpd's FIB writer against BIRD's kernel protocol, N routes each.

Everything runs in two network namespaces this script creates and deletes (never the host's
tables), each with a veth pair ``v0``/``v1`` inside, ``v0`` being 192.0.2.1/24; every route is
an IPv4 /24 from 16.0.0.0/24 upward ``via 192.0.2.2``.

- **bgpd**: the FIB writer of bgpd.kernel in this process, its netlink socket opened in the
  namespace. Install: from the Loc-RIB commit of N routes from one BGP source (the writer is a
  Loc-RIB listener, so this is also what a BGP session that delivers N routes costs it) until
  the writer is idle, every request acknowledged by the kernel. Remove: from the commit of
  their withdrawal until idle. Measured too: how long the event loop was held at most by one
  batch (the writer's own figure), and at most between two ticks of a 1 ms timer running
  alongside while the writer drains (which also catches the garbage collector).
- **bird**: ``bird -f`` (BIRD 2) in the other namespace with ``protocol device``, ``protocol
  kernel { ipv4 { export all; }; }`` and ``protocol static``. Install: ``birdc configure``
  from a config whose static protocol is empty to one with N ``route X via 192.0.2.2;``
  lines, until the kernel protocol reports N routes exported (BIRD writes them to the kernel
  synchronously, one netlink request per route); the time its RIB reached N is noted.
  Remove: configure back to the empty static protocol, until 0 exported. This includes
  BIRD's parsing of the N-line config.
- **pyroute2** (reference, ``--pyroute2 N``, default 5000 routes): ``IPRoute.route("replace",
  ...)`` per route, the obvious way to program routes from Python.

After every install the kernel table is counted (``ip -n NS route show proto ... | wc -l``,
not timed) and must hold exactly N routes; after every removal none.

Run (root, ``ip`` and ``bird`` on the PATH): ``.venv/bin/python bench/fib.py [--n 100000
--repeat 3 --batch 1000]``. Results go to ``bench/results/fib-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import structlog  # noqa: E402

from bgpd.kernel import Kernel, KernelSettings  # noqa: E402
from bgpd.rib import Rib, Source  # noqa: E402
from bgpd.wire import AttrSet, intern  # noqa: E402
from bgpd.wire.constants import AS_SEQUENCE, IPV4_UNICAST  # noqa: E402

GATEWAY = "192.0.2.2"


def prefixes(n: int) -> list[bytes]:
    return [bytes((24, 16 + (i >> 16), (i >> 8) & 255, i & 255)) for i in range(n)]


def prefix_text(i: int) -> str:
    return f"{16 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}.0/24"


# --- namespaces ---------------------------------------------------------------------------------


def ip(*args: str) -> str:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


@contextlib.contextmanager
def namespace(name: str):
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        ip("-n", name, "link", "set", "v0", "up")
        ip("-n", name, "link", "set", "v1", "up")
        ip("-n", name, "addr", "add", "192.0.2.1/24", "dev", "v0")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def count_routes(ns: str, proto: str) -> int:
    out = subprocess.run(
        f"ip -n {ns} -4 route show proto {proto} | wc -l",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return int(out.strip() or 0)


# --- bgpd -----------------------------------------------------------------------------------------


async def bgpd_runs(ns: str, n: int, repeat: int, batch: int) -> dict:
    rib = Rib()
    k = Kernel(rib.loc, KernelSettings(fib=True, netns=ns, persist=False))
    await k.start()
    k.fib.batch = batch
    src = Source("192.0.2.2", "bgp", asn=65001, local_as=65000, address_key=b"\x02")
    nh = bytes((192, 0, 2, 2))
    attrs = intern(AttrSet(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=nh))
    loc = rib.loc[IPV4_UNICAST]
    keys = prefixes(n)
    install = common.Measurement("bgpd install", n, "routes", baseline="bird install")
    remove = common.Measurement("bgpd remove", n, "routes", baseline="bird remove")
    lag: list[float] = []
    stop = False

    async def ticker():
        while not stop:
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lag.append(time.perf_counter() - t - 0.001)

    tick = asyncio.get_running_loop().create_task(ticker())
    batch_max = []
    loop_max = []
    try:
        for run in range(repeat):
            for m, work, want in (
                (install, lambda: loc.announce(src, keys, attrs), n),
                (remove, lambda: loc.withdraw(src, keys), 0),
            ):
                gc.collect()
                await asyncio.sleep(0.05)
                lag.clear()
                k.fib.stats["max_batch_ms"] = 0.0
                batches0 = k.fib.stats["batches"]
                c0 = time.process_time()
                t0 = time.perf_counter()
                work()
                rib.commit()
                lag.clear()  # from here on: the writer's batches (and the GC), not the RIB
                await k.fib.wait_idle(600)
                t1 = time.perf_counter()
                c1 = time.process_time()
                m.wall.append(t1 - t0)
                m.cpu.append(c1 - c0)
                got = count_routes(ns, "bgp")
                if got != want:
                    raise AssertionError(f"bgpd run {run}: {got} routes in the kernel, want {want}")
                nb = k.fib.stats["batches"] - batches0
                batch_max.append(k.fib.stats["max_batch_ms"])
                loop_max.append(max(lag) * 1000 if lag else 0.0)
                print(
                    f"  {m.name:14} run {run}: {t1 - t0:.3f} s wall, {c1 - c0:.3f} s CPU, "
                    f"{nb} batches, longest batch {batch_max[-1]:.1f} ms, "
                    f"longest loop stall {loop_max[-1]:.1f} ms",
                    flush=True,
                )
    finally:
        stop = True
        tick.cancel()
        await k.close()
    return {
        "install": install,
        "remove": remove,
        "max_batch_ms": batch_max,
        "max_loop_stall_ms": loop_max,
        "batch": batch,
    }


# --- BIRD -----------------------------------------------------------------------------------------

BIRD_CONFIG = """\
router id 192.0.2.1;
protocol device {{ scan time 3600; }}
protocol kernel kernel1 {{
    scan time 3600;
    ipv4 {{ export all; import none; }};
}}
protocol static static1 {{
    ipv4;
{routes}}}
"""


def bird_config(n: int) -> str:
    routes = "".join(f"    route {prefix_text(i)} via {GATEWAY};\n" for i in range(n))
    return BIRD_CONFIG.format(routes=routes)


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bird:
    def __init__(self, ns: str, workdir: Path) -> None:
        self.ns = ns
        self.dir = workdir
        self.cfg = workdir / "bird.conf"
        self.sock = workdir / "bird.ctl"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.cfg.write_text(bird_config(0))
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "bird", "-f", "-c", str(self.cfg)]
            + ["-s", str(self.sock), "-P", str(self.dir / "bird.pid")],
            stdin=subprocess.DEVNULL,
            stdout=open(self.dir / "bird.log", "w"),  # noqa: SIM115 - lives with the process
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.sock.exists() and "kernel1" in self.birdc("show", "protocols"):
                return
            time.sleep(0.05)
        raise RuntimeError(f"BIRD did not start: {(self.dir / 'bird.log').read_text()}")

    def birdc(self, *args: str) -> str:
        r = subprocess.run(
            ["birdc", "-s", str(self.sock), *args], capture_output=True, text=True, timeout=60
        )
        return r.stdout

    def exported(self) -> int:
        for line in self.birdc("show", "protocols", "all", "kernel1").splitlines():
            line = line.strip()
            if line.startswith("Routes:"):
                # "Routes:         0 imported, 100000 exported, 0 preferred"
                words = line.split()
                return int(words[words.index("exported,") - 1])
        return -1

    def rib_count(self) -> int:
        out = self.birdc("show", "route", "count")
        for word_line in out.splitlines():
            if "routes" in word_line and "of" in word_line:
                return int(word_line.split()[0])
        return -1

    def configure(self, n: int, want: int, timeout: float = 600) -> tuple[float, float, float]:
        """Switch to a config of ``n`` static routes; (wall, CPU, time the RIB had ``want``)."""
        self.cfg.write_text(bird_config(n))
        pid = self.proc.pid
        c0 = proc_cpu(pid)
        t0 = time.perf_counter()
        r = self.birdc("configure")
        if "Reconfigured" not in r and "Reconfiguration in progress" not in r:
            raise RuntimeError(f"birdc configure: {r}")
        rib_at = None
        deadline = t0 + timeout
        while True:
            now = time.perf_counter()
            if rib_at is None and self.rib_count() == want:
                rib_at = time.perf_counter() - t0
            if self.exported() == want:
                t1 = time.perf_counter()
                break
            if now > deadline:
                raise RuntimeError("BIRD did not converge")
            time.sleep(0.005)
        c1 = proc_cpu(pid)
        return t1 - t0, c1 - c0, rib_at if rib_at is not None else t1 - t0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def bird_runs(ns: str, n: int, repeat: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fib-bird-"))
    bird = Bird(ns, workdir)
    install = common.Measurement("bird install", n, "routes")
    remove = common.Measurement("bird remove", n, "routes")
    rib_times = []
    try:
        bird.start()
        for run in range(repeat):
            wall, cpu, rib_at = bird.configure(n, n)
            install.wall.append(wall)
            install.cpu.append(cpu)
            rib_times.append(rib_at)
            got = count_routes(ns, "bird")
            if got != n:
                raise AssertionError(f"bird run {run}: {got} routes in the kernel, want {n}")
            print(
                f"  bird install   run {run}: {wall:.3f} s wall, {cpu:.3f} s CPU "
                f"(RIB complete after {rib_at:.3f} s)",
                flush=True,
            )
            wall, cpu, _ = bird.configure(0, 0)
            remove.wall.append(wall)
            remove.cpu.append(cpu)
            got = count_routes(ns, "bird")
            if got != 0:
                raise AssertionError(f"bird run {run}: {got} routes left in the kernel")
            print(f"  bird remove    run {run}: {wall:.3f} s wall, {cpu:.3f} s CPU", flush=True)
    finally:
        bird.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"install": install, "remove": remove, "rib_complete_s": rib_times}


# --- pyroute2 -------------------------------------------------------------------------------------


def pyroute2_run(ns: str, n: int) -> common.Measurement:
    from pyroute2 import IPRoute

    m = common.Measurement("pyroute2 replace", n, "routes", baseline="bird install")
    with IPRoute(netns=ns) as ipr:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for i in range(n):
            ipr.route("replace", dst=prefix_text(i), gateway=GATEWAY, proto=186)
        m.wall.append(time.perf_counter() - t0)
        m.cpu.append(time.process_time() - c0)
        for i in range(n):
            ipr.route("del", dst=prefix_text(i), proto=186)
    print(f"  pyroute2       {n} routes: {m.wall[0]:.3f} s wall", flush=True)
    return m


# --- main -----------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="routes (default 100000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    ap.add_argument("--batch", type=int, default=500, help="bgpd: prefixes per batch")
    ap.add_argument("--pyroute2", type=int, default=5000, help="pyroute2 routes (0: skip)")
    ap.add_argument("--no-bird", action="store_true")
    ap.add_argument("--no-json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("bench/fib.py needs root and iproute2 (network namespaces)", file=sys.stderr)
        return 2
    if not args.no_bird and shutil.which("bird") is None:
        print("bird not found (apt-get install bird2), or use --no-bird", file=sys.stderr)
        return 2
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    common.warn_if_busy()
    tag = f"{os.getpid()}"
    results: dict = {}
    measurements = []
    print(f"bgpd FIB writer, {args.n} routes, batch {args.batch}:", flush=True)
    with namespace(f"bench-fib-bgpd-{tag}") as ns:
        results["bgpd"] = asyncio.run(bgpd_runs(ns, args.n, args.repeat, args.batch))
    if not args.no_bird:
        print(f"BIRD kernel protocol, {args.n} static routes:", flush=True)
        with namespace(f"bench-fib-bird-{tag}") as ns:
            results["bird"] = bird_runs(ns, args.n, args.repeat)
    if args.pyroute2:
        print("pyroute2:", flush=True)
        with namespace(f"bench-fib-p2-{tag}") as ns:
            results["pyroute2"] = pyroute2_run(ns, args.pyroute2)
    for impl in ("bgpd", "bird"):
        if impl in results:
            measurements += [results[impl]["install"], results[impl]["remove"]]
    if "pyroute2" in results:
        measurements.append(results["pyroute2"])
    if not args.no_bird:
        for m in measurements:
            if m.baseline is None and m.name.startswith("bird"):
                m.baseline = m.name
    else:
        for m in measurements:
            m.baseline = None
    print()
    common.print_rate_table(measurements, unit="routes", ratio="× BIRD time")
    b = results["bgpd"]
    print(
        f"\nbgpd: longest batch {max(b['max_batch_ms']):.1f} ms "
        f"(median of runs {statistics.median(b['max_batch_ms']):.1f} ms); longest event-loop "
        f"stall seen by a 1 ms timer {max(b['max_loop_stall_ms']):.1f} ms "
        f"(median {statistics.median(b['max_loop_stall_ms']):.1f} ms)"
    )
    if "bird" in results:
        print(
            "BIRD: RIB complete after "
            + ", ".join(f"{t:.3f}" for t in results["bird"]["rib_complete_s"])
            + " s (of the install times above)"
        )
    if args.markdown:
        print()
        print(
            common.markdown_table(
                common.rate_headers("routes", "× BIRD time"),
                common.rate_rows(measurements),
            )
        )
    if not args.no_json:
        payload = {
            "n": args.n,
            "repeat": args.repeat,
            "batch": args.batch,
            "measurements": [m.to_dict() for m in measurements],
            "bgpd_max_batch_ms": b["max_batch_ms"],
            "bgpd_max_loop_stall_ms": b["max_loop_stall_ms"],
            "bird_rib_complete_s": results.get("bird", {}).get("rib_complete_s"),
            "git": common.git_info(["bgpd/kernel"]),
        }
        path = common.write_results("fib", payload)
        print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The daemon's route pipeline in one process, without sockets: CPU and bytes per prefix.

bench/rr.py and bench/sessions.py measure bgpd as a daemon beside BIRD, over real TCP, on a
shared machine: their wall and CPU times move with the load. This benchmark runs the same
code path in one process on a fixed input, so that a change can be compared A/B by CPU
seconds (or by instruction counts under ``valgrind --tool=callgrind``) and its memory
counted per structure with ``tracemalloc``:

    bytes in → fsm.Protocol (framing, decoding) → Speaker.updates_received → Rde.receive
    (imports, Adj-RIB-In, Loc-RIB, decision, export groups) → Speaker._drain → Rde.drain
    (export contexts, packing) → PeerSession.send → fsm.Protocol → transport.write

Everything from :class:`bgpd.speaker.Speaker` down is the real code: its neighbors, sessions
(``PeerSession`` with a real ``_Conn``) and the engine. Only the event loop and the
transports are fakes: the loop runs ``call_soon`` callbacks in order and never fires
timers; a transport counts the bytes written and whether reading is paused. The peers'
OPEN and KEEPALIVE are fed in, so every session reaches Established through the FSM.

Scenarios:

- ``rr``: bench/rr.py's input: a feeder announces N /24s (one attribute set per 200
  prefixes) to a reflector with C clients (4). The feed is given in 64 KiB reads; while the
  engine pauses the feeder's reading (export backlog) the loop drains, as the daemon does.
- ``calico``: bench/sessions.py's settle: K clients (1,000), each announcing one prefix
  with its own next hop; clients come up ``--concurrency`` at a time and the loop drains
  after each group, so the reflector sends each client K-1 UPDATEs of one prefix.

Checks: every client receives every prefix it should, once (counted from the NLRI it is
sent; all prefixes are /24 or /26 of one length per scenario), and nothing is withdrawn.

    .venv/bin/python bench/pipeline.py --scenario rr --n 1000000 --repeat 3
    .venv/bin/python bench/pipeline.py --scenario calico --clients 1000 --repeat 3
    .venv/bin/python bench/pipeline.py --scenario rr --n 1000000 --memory    # tracemalloc
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python bench/pipeline.py --scenario rr --n 100000 --repeat 1 --in-process
    (and the same with --setup-only, whose instructions are subtracted)

Each run is a fresh child process (fork), so peak RSS (``ru_maxrss``) is per run; the
parent prints the medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import rr  # noqa: E402

from bgpd.config import parse  # noqa: E402
from bgpd.log import configure_logging  # noqa: E402
from bgpd.session.peer import _Conn  # noqa: E402
from bgpd.speaker.daemon import Speaker  # noqa: E402
from bgpd.wire import AttrSet, Context, Keepalive, Open, pack_announce  # noqa: E402
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST  # noqa: E402

ASN = 64512
R_ADDR = "127.1.0.1"
READ = 65536  # bytes per read, as a socket read would give


# --- fakes: the event loop and the transport -----------------------------------------------


class _Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """``call_soon`` callbacks run by :meth:`run`; timers are accepted and never fire."""

    def __init__(self) -> None:
        self.soon: list = []
        self.timers = 0

    def time(self) -> float:
        return time.monotonic()

    def call_soon(self, cb, *args):
        h = _Handle()
        self.soon.append((h, cb, args))
        return h

    def call_at(self, when, cb, *args):
        self.timers += 1
        return _Handle()

    def call_later(self, delay, cb, *args):
        return self.call_at(0, cb, *args)

    def run(self) -> int:
        """Run queued callbacks (and those they queue) until none is left."""
        n = 0
        while self.soon:
            todo, self.soon = self.soon, []
            for h, cb, args in todo:
                if not h.cancelled:
                    cb(*args)
                    n += 1
        return n


class FakeTransport:
    """What ``_Conn`` uses of an asyncio transport; counts what is written (the CPU time
    spent counting is kept in ``FakeTransport.counting`` and left out of the figures)."""

    counting = 0.0

    def __init__(self, local: str, count_prefixes: int = 0) -> None:
        self.local = local
        self.written = 0
        self.writes = 0
        self.reading = True
        self.width = count_prefixes  # octets per NLRI to count (0: do not count)
        self.nlri = 0
        self.withdrawn = 0

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        if name == "sockname":
            return (self.local, 179)
        return default

    def write(self, data) -> None:
        self.written += len(data)
        self.writes += 1
        if self.width:
            c0 = time.process_time()
            self._count(data)
            FakeTransport.counting += time.process_time() - c0

    def _count(self, data) -> None:
        # UPDATEs only (after the OPEN/KEEPALIVE): withdrawn length, attributes, NLRI.
        i, n, w = 0, len(data), self.width
        while i < n:
            length = int.from_bytes(data[i + 16 : i + 18], "big")
            if data[i + 18] == 2:
                wl = int.from_bytes(data[i + 19 : i + 21], "big")
                al = int.from_bytes(data[i + 21 + wl : i + 23 + wl], "big")
                self.withdrawn += wl // w
                self.nlri += (length - 23 - wl - al) // w
            i += length

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def peer_open(asn: int, router_id: str) -> bytes:
    caps = (Multiprotocol(1, 1), RouteRefresh(), FourOctetAS(asn))
    return Open(asn=asn, hold_time=240, router_id=router_id, capabilities=caps).encode()


KEEPALIVE = Keepalive().encode()


class Reflector:
    """A Speaker with neighbors whose sessions are driven by hand over fake transports."""

    def __init__(self, addresses: list[str], width: int) -> None:
        lines = {
            "router_id": "10.255.0.1",
            "asn": ASN,
            "hold_time": 240,
            "neighbors": [
                {
                    "address": a,
                    "asn": ASN,
                    "passive": True,
                    "rr_client": True,
                    "families": ["ipv4"],
                }
                for a in addresses
            ],
        }
        self.loop = FakeLoop()
        self.speaker = Speaker(parse(lines), loop=self.loop)
        self.conns: dict = {}
        self.transports: dict = {}
        self.width = width
        for ncfg in self.speaker.config.neighbors:
            n = self.speaker.neighbors.add(ncfg)
            n.session.start()

    def connect(self, address: str, router_id: str) -> None:
        """The peer at ``address`` connects and sends OPEN + KEEPALIVE: Established."""
        n = self.speaker.neighbors[address]
        s = n.session
        conn = _Conn(s, s.fsm, outbound=False)
        s.conn = conn
        t = FakeTransport(R_ADDR, self.width)
        self.transports[address] = t
        self.conns[address] = conn
        conn.connection_made(t)
        conn.data_received(peer_open(ASN, router_id) + KEEPALIVE)
        assert s.established, (address, s.state)

    def feed(self, address: str, data: bytes) -> None:
        """``data`` from the peer, in reads of READ octets; while the engine pauses the
        peer's reading, the loop drains (as the daemon's would)."""
        conn = self.conns[address]
        t = self.transports[address]
        loop = self.loop
        for i in range(0, len(data), READ):
            while not t.reading:
                if not loop.run():
                    raise RuntimeError("reading paused and nothing to do")
            conn.data_received(data[i : i + READ])
            loop.run()
        loop.run()


# --- scenarios ------------------------------------------------------------------------------


def scenario_rr(args) -> dict:
    clients = [f"127.1.0.{3 + i}" for i in range(args.clients)]
    late = [f"127.1.1.{1 + i}" for i in range(args.late)]
    feeder = "127.1.0.2"
    feed, msgs = rr.build_feed(args.n, args.per_set)
    r = Reflector([feeder, *clients, *late], width=4)
    for i, a in enumerate([feeder, *clients]):
        r.connect(a, f"10.0.0.{i + 2}")
    r.loop.run()
    for t in r.transports.values():
        t.nlri = t.withdrawn = 0
    gc.collect()
    if args.setup_only:
        return {"cpu": 0.0, "units": 0, "ok": True, "writes": 0}
    snap = _start_memory(args)
    rss0 = common.current_rss_bytes()
    FakeTransport.counting = 0.0
    c0 = time.process_time()
    r.feed(feeder, feed)
    cpu = time.process_time() - c0 - FakeTransport.counting
    rss_loaded = common.current_rss_bytes()
    # --late: members that come up once the table is loaded (each gets all of it)
    c1 = time.process_time()
    for i, a in enumerate(late):
        r.connect(a, f"10.0.1.{i + 1}")
    r.loop.run()
    cpu_late = time.process_time() - c1
    mem = _stop_memory(args, snap, r, args.n)
    got = [r.transports[a].nlri for a in clients + late]
    bad = [a for a in clients + late if r.transports[a].nlri != args.n or r.transports[a].withdrawn]
    return {
        "cpu": cpu,
        "units": args.n,
        "rss_before": rss0,
        "rss_loaded": rss_loaded,
        "cpu_late": cpu_late,
        "ok": not bad,
        "received": got,
        "updates_in": msgs,
        "writes": sum(r.transports[a].writes for a in clients),
        "memory": mem,
    }


def calico_update(i: int, address: str) -> bytes:
    attrs = AttrSet(
        origin=0, as_path=(), next_hop=bytes(int(x) for x in address.split(".")), local_pref=100
    )
    prefix = b"\x1a" + ((10 << 24) + (i << 6)).to_bytes(4, "big")
    return pack_announce(IPV4_UNICAST, attrs, [prefix], Context(as4=True, ibgp=True))[0]


def scenario_calico(args) -> dict:
    k = args.clients
    addrs = [f"127.2.{1 + i // 250}.{1 + i % 250}" for i in range(k)]
    ups = [calico_update(i, a) for i, a in enumerate(addrs)]
    r = Reflector(addrs, width=5)
    gc.collect()
    if args.setup_only:
        return {"cpu": 0.0, "units": 0, "ok": True, "writes": 0}
    snap = _start_memory(args)
    rss0 = common.current_rss_bytes()
    FakeTransport.counting = 0.0
    c0 = time.process_time()
    step = max(1, args.concurrency)
    for start in range(0, k, step):
        group = range(start, min(k, start + step))
        for i in group:
            r.connect(addrs[i], addrs[i])
        r.loop.run()
        for i in group:
            r.conns[addrs[i]].data_received(ups[i])
        r.loop.run()
    r.loop.run()
    cpu = time.process_time() - c0 - FakeTransport.counting
    mem = _stop_memory(args, snap, r, k)
    bad = [a for a in addrs if r.transports[a].nlri != k - 1 or r.transports[a].withdrawn]
    return {
        "cpu": cpu,
        "units": k * (k - 1),
        "rss_before": rss0,
        "ok": not bad,
        "bad": len(bad),
        "writes": sum(t.writes for t in r.transports.values()),
        "memory": mem,
    }


# --- memory: tracemalloc by allocation site and sizes of the main structures ---------------


def _start_memory(args):
    if not args.memory:
        return None
    tracemalloc.start(1)
    return True


def _stop_memory(args, snap, r: Reflector, n: int) -> dict | None:
    if not snap:
        return None
    cur, peak = tracemalloc.get_traced_memory()
    gc.collect()
    s = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = s.statistics("lineno")
    top = [
        {
            "where": f"{st.traceback[0].filename.split('/bgpd/')[-1]}:{st.traceback[0].lineno}",
            "bytes": st.size,
            "count": st.count,
        }
        for st in stats[:25]
    ]
    rib = r.speaker.rde.rib
    sizes = {}
    loc = rib.loc[IPV4_UNICAST]
    sizes["Loc-RIB table dict"] = sys.getsizeof(loc.table)
    adj = 0
    for p in r.speaker.rde.peers.values():
        for d in p.source.adj_in.values():
            adj += sys.getsizeof(d) if type(d) is dict else 0  # (a view of the Loc-RIB)
    sizes["Adj-RIB-In dicts"] = adj
    pend = 0
    for g in rib.exporter.groups():
        for d in g.pending.values():
            pend += sys.getsizeof(d)
        for q in getattr(g, "runs", {}).values():
            pend += sum(sys.getsizeof(run[0]) for run in q)
    sizes["export pending state"] = pend
    keys = 0
    for p in loc.table:
        keys += sys.getsizeof(p)
    sizes["prefix objects (getsizeof)"] = keys
    return {
        "traced_now": cur,
        "traced_peak": peak,
        "per_prefix_now": cur / n,
        "per_prefix_peak": peak / n,
        "top": top,
        "sizes": sizes,
    }


# --- running ---------------------------------------------------------------------------------


def run_child(args) -> dict:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            res = SCENARIOS[args.scenario](args)
            res["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except BaseException as e:  # noqa: BLE001
            res = {"error": repr(e)}
        with os.fdopen(w, "w") as f:
            json.dump(res, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


SCENARIOS = {"rr": scenario_rr, "calico": scenario_calico}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="rr")
    ap.add_argument("--n", type=int, default=1_000_000, help="rr: prefixes")
    ap.add_argument("--per-set", type=int, default=200, help="rr: prefixes per attribute set")
    ap.add_argument("--clients", type=int, default=None, help="rr: 4, calico: 1000")
    ap.add_argument("--concurrency", type=int, default=8, help="calico: sessions up at once")
    ap.add_argument(
        "--late", type=int, default=0, help="rr: clients that come up after the table is loaded"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="tracemalloc (slows the run)")
    ap.add_argument("--in-process", action="store_true", help="no fork (for callgrind)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument(
        "--setup-only",
        action="store_true",
        help="stop before the timed part (callgrind: subtract this run's instructions)",
    )
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    configure_logging("warning")
    if args.clients is None:
        args.clients = 4 if args.scenario == "rr" else 1000
    runs = []
    for k in range(args.repeat):
        res = SCENARIOS[args.scenario](args) if args.in_process else run_child(args)
        if "error" in res:
            print(f"run {k + 1}: error {res['error']}", file=sys.stderr)
            return 1
        runs.append(res)
        if not args.quiet:
            print(
                f"run {k + 1}/{args.repeat}: CPU {res['cpu']:.3f} s, "
                f"peak RSS {res.get('peak_rss', 0) / 2**20:.1f} MiB, "
                f"writes {res['writes']}, check {'ok' if res['ok'] else 'FAILED'}"
                + (
                    f", RSS before {res['rss_before'] / 2**20:.1f} MiB, loaded "
                    f"{res['rss_loaded'] / 2**20:.1f} MiB, late members' CPU "
                    f"{res['cpu_late']:.3f} s"
                    if "rss_loaded" in res
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
        if res.get("memory") and not args.quiet:
            m = res["memory"]
            print(
                f"  tracemalloc: now {m['traced_now'] / 2**20:.1f} MiB "
                f"({m['per_prefix_now']:.0f} B per unit), peak {m['traced_peak'] / 2**20:.1f} MiB "
                f"({m['per_prefix_peak']:.0f} B per unit)"
            )
            for name, b in m["sizes"].items():
                print(f"    {name:32} {b / 2**20:8.1f} MiB")
            for t in m["top"][:15]:
                print(f"    {t['where']:48} {t['bytes'] / 2**20:8.1f} MiB {t['count']:>9}")
    cpus = [r["cpu"] for r in runs]
    peak = [r.get("peak_rss", 0) for r in runs]
    summary = {
        "scenario": args.scenario,
        "n": args.n,
        "clients": args.clients,
        "cpu_median": statistics.median(cpus),
        "cpu": cpus,
        "peak_rss_median": statistics.median(peak),
        "ok": all(r["ok"] for r in runs),
        "git": common.git_info(),
        "python": sys.version.split()[0],
    }
    print(
        f"{args.scenario}: CPU median {summary['cpu_median']:.3f} s "
        f"(runs {', '.join(f'{c:.3f}' for c in cpus)}), peak RSS "
        f"{summary['peak_rss_median'] / 2**20:.1f} MiB, check {'ok' if summary['ok'] else 'FAILED'}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=1, default=str)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""The cost of MRT update logging and BMP monitoring per UPDATE, per prefix, per table.

The input is bench/codec.py's synthetic table (``--ipv4`` /24s and ``--ipv6`` prefixes, one
attribute set per 10-200 prefixes, packed into UPDATEs of at most 4096 octets), plus the same
prefixes as single-prefix UPDATEs (the churn case). Measured, each several times, median
quoted:

- ``mrt encode``: ``MrtPeer.message(raw, now)``, one BGP4MP_ET record per UPDATE;
- ``mrt log``: ``UpdateLogWriter.messages(peer, batch)`` in batches of ``--batch`` (as one
  socket read delivers them), the writer thread writing a real file; the time is what the
  caller (the event loop) spends, and ``mrt log+disk`` waits until the thread wrote it all;
- ``bmp encode``: ``codec.route_monitoring_many`` (pre-policy Route Monitoring) per UPDATE;
- ``bmp live``: ``BmpService.updates_received`` with one station connected over loopback TCP
  to a sink that reads and discards, until the sink has every octet;
- ``bmp loc-rib``: ``BmpService.loc_rib_changed(family, [(prefix, attrs)])`` for every
  prefix of the table, in commits of ``--commit`` prefixes (RFC 9069 Loc-RIB monitoring:
  grouped per attribute set, packed, wrapped), until the sink has it all;
- ``bmp resync``: a station connecting to a daemon holding the table (one peer's Adj-RIB-In
  and the Loc-RIB), until its resync completed at the sink;
- ``table dump``: ``write_table_dump`` of the table (the Loc-RIB and two peers' paths).

The summary extrapolates to the 1M-prefix reflector run (one feeder, four clients): the
CPU seconds MRT logging and BMP monitoring would add to it.

Run: ``.venv/bin/python bench/mrt_bmp.py [--help]``. Results go to
``bench/results/mrt_bmp-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from codec import DataSet  # noqa: E402

from bgpd.bmp import BmpPeer, BmpService, StationConfig, codec  # noqa: E402
from bgpd.bmp.rib import LocRibListener, RibTables  # noqa: E402
from bgpd.mrt import DumpPeer, MrtPeer, TableSnapshot, UpdateLogWriter, write_table_dump  # noqa: E402
from bgpd.rib import Rib, Source  # noqa: E402
from bgpd.wire import Context, Open, pack_announce  # noqa: E402
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST  # noqa: E402

NOW = 1_700_000_000.123456
PEER = MrtPeer(65001, 65000, "192.0.2.1", "192.0.2.254")
OPEN = Open(asn=65000, hold_time=90, router_id="192.0.2.254").encode()


def bmp_peer() -> BmpPeer:
    return BmpPeer("feeder", "192.0.2.1", 65001, "192.0.2.1", "192.0.2.254", 179, 40001, OPEN, OPEN)


def batches(msgs: list[bytes], n: int) -> list[list[bytes]]:
    return [msgs[i : i + n] for i in range(0, len(msgs), n)]


# --- sinks ----------------------------------------------------------------------------------


class Sink(asyncio.Protocol):
    """A collector that reads and discards, counting octets."""

    received = 0
    waiters: list = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        Sink.received += len(data)


async def start_sink(address: str):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, address, 0)
    return server, server.sockets[0].getsockname()[1]


async def until_received(n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while Sink.received < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"sink got {Sink.received} of {n} octets")
        await asyncio.sleep(0.0005)


class Tables:
    def __init__(self, adj, loc):
        self.adj = adj
        self.loc = loc

    def adj_rib_in(self, key):
        return iter(self.adj)

    def loc_rib(self):
        return iter(self.loc)


async def service(address: str, port: int, tables=None, lookup=None) -> tuple[BmpService, object]:
    svc = BmpService(
        [StationConfig(address=address, port=port, retry=0.05, buffer=1 << 30, stats_interval=0)],
        router_id="192.0.2.254",
        local_as=65000,
        tables_provider=(lambda: tables) if tables is not None else None,
        loc_rib_lookup=lookup,
    )
    svc.peer_up(bmp_peer())
    svc.start()
    st = svc.stations[0]
    deadline = time.monotonic() + 10
    while not (st.state == "up" and not st.resyncing):
        if time.monotonic() > deadline:
            raise AssertionError(f"station not up: {st.stats()}")
        await asyncio.sleep(0.001)
    return svc, st


def run(coro_fn):
    """A measure() callable running one asyncio scenario per run."""
    return lambda: asyncio.run(coro_fn())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ipv4", type=int, default=200_000, help="IPv4 prefixes (200k)")
    ap.add_argument("--ipv6", type=int, default=40_000, help="IPv6 prefixes (40k)")
    ap.add_argument("--churn", type=int, default=50_000, help="single-prefix UPDATEs (50k)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16, help="UPDATEs per call (one socket read)")
    ap.add_argument("--commit", type=int, default=5000, help="prefixes per Loc-RIB commit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--rr-updates", type=int, default=5000, help="UPDATEs of bench/rr.py's 1M feed (5000)"
    )
    ap.add_argument("--address", default="127.0.15.250", help="loopback address of the sink")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    common.warn_if_busy()
    rep = args.repeat

    print(f"generating {args.ipv4:,} IPv4 + {args.ipv6:,} IPv6 prefixes...", file=sys.stderr)
    data = DataSet(args.ipv4, args.ipv6, args.seed, 0)
    full = [m for fam in (IPV4_UNICAST, IPV6_UNICAST) for m, _k in data.msgs[fam]]
    ctx = Context()
    churn = []
    for family, attrs, prefixes in data.groups:
        for p in prefixes:
            churn += pack_announce(family, attrs, [p], ctx)
            if len(churn) >= args.churn:
                break
        if len(churn) >= args.churn:
            break
    n_prefixes = args.ipv4 + args.ipv6
    info = data.describe()
    mean_full = info["mean_message_bytes"]
    mean_churn = sum(map(len, churn)) / len(churn)
    print(
        f"  {len(full):,} table UPDATEs ({mean_full:.0f} octets), {len(churn):,} churn UPDATEs "
        f"({mean_churn:.0f} octets)",
        file=sys.stderr,
    )
    results: list[common.Measurement] = []

    # --- MRT ------------------------------------------------------------------------------
    def mrt_encode(msgs):
        def fn():
            enc = PEER.message
            for m in msgs:
                enc(m, NOW)
            return len(msgs)

        return fn

    results.append(
        common.measure("mrt encode, table", mrt_encode(full), repeat=rep, unit="UPDATEs")
    )
    results.append(
        common.measure("mrt encode, churn", mrt_encode(churn), repeat=rep, unit="UPDATEs")
    )

    tmp = tempfile.mkdtemp(prefix="mb-bench-")
    holder: dict = {}

    def new_writer():
        holder["w"] = UpdateLogWriter(os.path.join(tmp, "u.%Y%m%d.%H%M.mrt"), 900)

    def mrt_log(msgs, wait_disk: bool):
        groups = batches(msgs, args.batch)

        def fn():
            w = holder["w"]
            for g in groups:
                w.messages(PEER, g)
            if wait_disk:
                w.sync()
            return len(msgs)

        return fn

    def retire_writer():
        w = holder.pop("w", None)
        if w is not None:
            w.close()
            assert w.stats()["dropped_records"] == 0, w.stats()
            for f in w.files:
                os.unlink(f)

    for name, msgs in (("churn", churn), ("table", full)):
        for disk in (False, True):
            label = f"mrt log{'+disk' if disk else ' (caller)'}, {name}"

            def setup():
                retire_writer()
                new_writer()

            results.append(
                common.measure(label, mrt_log(msgs, disk), repeat=rep, setup=setup, unit="UPDATEs")
            )
    retire_writer()

    # --- BMP ------------------------------------------------------------------------------
    hdr = bmp_peer().header

    def bmp_encode(msgs):
        groups = batches(msgs, args.batch)

        def fn():
            rm = codec.route_monitoring_many
            for g in groups:
                rm(hdr, NOW, g)
            return len(msgs)

        return fn

    results.append(
        common.measure("bmp encode, table", bmp_encode(full), repeat=rep, unit="UPDATEs")
    )
    results.append(
        common.measure("bmp encode, churn", bmp_encode(churn), repeat=rep, unit="UPDATEs")
    )

    caller: dict[str, list[float]] = {}

    def bmp_live(name, msgs):
        groups = batches(msgs, args.batch)

        async def scenario():
            server, port = await start_sink(args.address)
            svc, st = await service(args.address, port)
            Sink.received = 0
            base = st.sent_bytes
            wall = cpu = 0.0
            upd = svc.updates_received
            for i, g in enumerate(groups):
                t0, c0 = time.perf_counter(), time.process_time()
                upd("feeder", g)
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
                if i % 64 == 63:
                    await asyncio.sleep(0)  # the loop runs between reads, as in the daemon
            caller.setdefault(name, []).append((wall, cpu))
            await until_received(st.sent_bytes - base)
            await svc.stop()
            server.close()
            await server.wait_closed()
            assert st.drops == 0
            return len(msgs)

        return run(scenario)

    for name, msgs in (("churn", churn), ("table", full)):
        e2e = common.measure(f"bmp live, {name}", bmp_live(name, msgs), repeat=rep, unit="UPDATEs")
        e2e.note = "until the sink (same process, same loop) read every octet"
        results.append(e2e)
        m = common.Measurement(
            f"bmp live (caller), {name}",
            len(msgs),
            "UPDATEs",
            note="time inside updates_received only: what the event loop pays",
        )
        m.wall = [w for w, _c in caller[name]]
        m.cpu = [c for _w, c in caller[name]]
        results.append(m)

    routes = [(fam, p, attrs) for fam, attrs, prefixes in data.groups for p in prefixes]

    async def loc_rib_scenario():
        server, port = await start_sink(args.address)
        svc, st = await service(args.address, port)
        Sink.received = 0
        base = st.sent_bytes
        wall = cpu = 0.0
        for fam in (IPV4_UNICAST, IPV6_UNICAST):
            rs = [(p, a) for f, p, a in routes if f == fam]
            for i in range(0, len(rs), args.commit):
                chunk = rs[i : i + args.commit]
                t0, c0 = time.perf_counter(), time.process_time()
                svc.loc_rib_changed(fam, chunk)
                wall += time.perf_counter() - t0
                cpu += time.process_time() - c0
                await asyncio.sleep(0)
        caller.setdefault("loc-rib", []).append((wall, cpu))
        await until_received(st.sent_bytes - base)
        await svc.stop()
        server.close()
        await server.wait_closed()
        return len(routes)

    for _f, a, _p in data.groups:
        a.cache.clear()
    e2e = common.measure(
        "bmp loc-rib changes", run(loc_rib_scenario), repeat=rep, setup=data.clear_caches
    )
    e2e.note = "until the sink (same process, same loop) read every octet"
    results.append(e2e)
    m = common.Measurement(
        "bmp loc-rib changes (caller)",
        len(routes),
        "prefixes",
        note="time inside loc_rib_changed only: what the event loop pays",
    )
    m.wall = [w for w, _c in caller["loc-rib"]]
    m.cpu = [c for _w, c in caller["loc-rib"]]
    results.append(m)

    # The lazy path the daemon uses (bgpd.bmp.rib): a real Rib loaded from one feeder, the
    # LocRibListener in its commit, the service's drain reading it back in slices.
    lazy: list = []

    async def lazy_scenario():
        server, port = await start_sink(args.address)
        rib = Rib()
        svc, st = await service(args.address, port, lookup=RibTables(rib, {}).best_many)
        listener = LocRibListener(svc)
        for loc in rib.loc.values():
            loc.listeners.append(listener)
        src = Source("feeder", asn=65000, local_as=65000, router_id=1)
        for fam, attrs, prefixes in data.groups:
            rib.loc[fam].announce(src, prefixes, attrs)
        Sink.received = 0
        base = st.sent_bytes
        c0 = time.process_time()
        rib.commit()
        commit_cpu = time.process_time() - c0
        drain_cpu = 0.0
        while any(svc._pending.values()):
            if svc._drain_handle is not None:  # run the slices here, to time them alone
                svc._drain_handle.cancel()
                svc._drain_handle = None
            if st._paused:
                await asyncio.sleep(0.0005)
                continue
            c0 = time.process_time()
            svc._drain()
            drain_cpu += time.process_time() - c0
            await asyncio.sleep(0)
        lazy.append((commit_cpu, drain_cpu))
        await until_received(st.sent_bytes - base)
        assert svc.loc_rib_drained == len(routes)
        await svc.stop()
        server.close()
        await server.wait_closed()
        return len(routes)

    e2e = common.measure(
        "bmp loc-rib, real Rib (lazy)", run(lazy_scenario), repeat=rep, setup=data.clear_caches
    )
    e2e.note = "load, commit, drain, until the sink read it all (same process)"
    results.append(e2e)
    for i, label in ((0, "listener in commit"), (1, "drain slices")):
        m = common.Measurement(f"bmp loc-rib, {label}", len(routes), "prefixes")
        m.wall = m.cpu = [x[i] for x in lazy]
        results.append(m)

    async def resync_scenario():
        server, port = await start_sink(args.address)
        tables = Tables(routes, routes)
        Sink.received = 0
        svc, st = await service(args.address, port, tables)
        await until_received(st.sent_bytes)
        await svc.stop()
        server.close()
        await server.wait_closed()
        return len(routes)

    results.append(
        common.measure(
            "bmp resync (adj-in + loc-rib)",
            run(resync_scenario),
            repeat=rep,
            setup=data.clear_caches,
        )
    )

    # --- table dump ---------------------------------------------------------------------------
    dump_path = os.path.join(tmp, "rib.mrt")

    def dump():
        snap = TableSnapshot(
            router_id="192.0.2.254",
            local_as=65000,
            peers=[
                DumpPeer("192.0.2.1", "192.0.2.1", 65001),
                DumpPeer("192.0.2.2", "192.0.2.2", 65002),
            ],
            routes=((f, p, a, [(0, a, None), (1, a, None)]) for f, p, a in routes),
            timestamp=NOW,
        )
        stats = write_table_dump(dump_path, snap)
        return stats["prefixes"]

    results.append(
        common.measure("table dump (3 entries/prefix)", dump, repeat=rep, setup=data.clear_caches)
    )
    dump_size = os.path.getsize(dump_path)
    os.unlink(dump_path)
    os.rmdir(tmp)

    # --- report ---------------------------------------------------------------------------
    print()
    for unit in ("UPDATEs", "prefixes"):
        ms = [m for m in results if m.unit == unit]
        common.print_rate_table(ms, per=1_000_000, unit=unit, ratio="-")
        print()
    by = {m.name: m for m in results}
    print(f"table dump: {common.fmt_bytes(dump_size)} for {n_prefixes:,} prefixes")

    # Extrapolation to bench/rr.py's 1M run: one feeder sends --rr-updates UPDATEs (5,000 of
    # ~860 octets, 200 prefixes each), the reflector sends about as many to each of four
    # clients. The MRT log writes a record per UPDATE in each direction and session; BMP sees
    # the received ones (pre-policy) and 1M Loc-RIB changes. CPU seconds (the machine is
    # shared: wall time is noisier), from the table-sized UPDATEs measured here.
    def cpu_rate(m):
        return m.units / m.median_cpu if m.median_cpu > 0 else float("inf")

    upd_in = args.rr_updates
    clients = 4
    mrt_rate = cpu_rate(by["mrt log (caller), table"])
    bmp_rate = cpu_rate(by["bmp live (caller), table"])
    loc_m = (by["bmp loc-rib, listener in commit"], by["bmp loc-rib, drain slices"])
    loc_rate = loc_m[0].units / (loc_m[0].median_cpu + loc_m[1].median_cpu)
    extra = {
        "updates_in": upd_in,
        "mrt_records": upd_in * (1 + clients),
        "mrt_log_seconds": upd_in * (1 + clients) / mrt_rate,
        "bmp_pre_policy_seconds": upd_in / bmp_rate,
        "bmp_loc_rib_seconds": 1_000_000 / loc_rate,
        "bmp_resync_seconds": 1_000_000 / cpu_rate(by["bmp resync (adj-in + loc-rib)"]),
        "table_dump_seconds": 1_000_000 / cpu_rate(by["table dump (3 entries/prefix)"]),
    }
    print()
    print(f"CPU added to the 1M-prefix reflector run ({upd_in:,} UPDATEs in, x{clients} out):")
    print(f"  MRT update log, {extra['mrt_records']:,} records: {extra['mrt_log_seconds']:.3f} s")
    print(f"  BMP pre-policy route monitoring: {extra['bmp_pre_policy_seconds']:.3f} s")
    print(f"  BMP Loc-RIB monitoring of 1M best-path changes: {extra['bmp_loc_rib_seconds']:.3f} s")
    print(
        f"  (once per station connection) a BMP resync of the 1M table: {extra['bmp_resync_seconds']:.2f} s"
    )
    print(
        f"  (on demand) a table dump of 1M prefixes, 3 entries each: {extra['table_dump_seconds']:.2f} s"
    )
    payload = {
        "args": vars(args),
        "input": {**info, "churn_updates": len(churn), "churn_mean_bytes": mean_churn},
        "measurements": [m.to_dict() for m in results],
        "extrapolation_1M": extra,
        "peak_rss": common.peak_rss_bytes(),
        "machine": common.machine_info(),
        "git": common.git_info(["bgpd/mrt", "bgpd/bmp"]),
    }
    if args.markdown:
        print(common.markdown_table(common.rate_headers("units", "-"), common.rate_rows(results)))
    path = common.write_results("mrt_bmp", payload)
    print(f"\nresults: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

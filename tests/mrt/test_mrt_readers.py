"""Table dumps and update logs read back by real parsers: Debian's bgpdump and mrtparse.

The routes are generated (seeded) over IPv4 and IPv6, with and without ADD-PATH, four-octet
AS numbers (in paths, in peer AS fields, through a two-octet session's AS4_PATH), AS_SETs,
communities, large communities, MED and LOCAL_PREF; every prefix and attribute both parsers
report must equal what was encoded.
"""

import asyncio
import os
import random

from mrt_readers import Route, bgpdump, expected_row, mrtparse

from bgpd.mrt import DumpPeer, MrtPeer, TableSnapshot, UpdateLogWriter, dump_table, write_table_dump
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE, AS_SET, IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.context import Context
from bgpd.wire.messages import KEEPALIVE_BYTES, Notification, Open
from bgpd.wire.packer import pack_announce, pack_withdraw

LOCAL_AS = 4200000000
ROUTER_ID = "192.0.2.254"


class Peer:
    def __init__(self, name, address, asn, router_id, local_address, as4=True, addpath=()):
        self.name = name
        self.address = address
        self.asn = asn
        self.router_id = router_id
        self.addpath = frozenset(addpath)
        self.mrt = MrtPeer(
            asn,
            LOCAL_AS,
            address,
            local_address,
            as4=as4,
            add_path_rx=self.addpath,
            add_path_tx=self.addpath,
        )
        self.as4 = as4


PEERS = [
    Peer("a", "192.0.2.1", 65001, "192.0.2.1", "192.0.2.254"),
    Peer(
        "b",
        "2001:db8::2",
        4200000002,
        "10.0.0.2",
        "2001:db8::fe",
        addpath=(IPV4_UNICAST, IPV6_UNICAST),
    ),
    Peer("c", "192.0.2.3", 65003, "192.0.2.3", "192.0.2.254", as4=False),
]


def random_attrs(rng: random.Random, family) -> AttrSet:
    def asn():
        return rng.choice([rng.randrange(1, 64496), rng.randrange(65536, 4199999999)])

    path = [(AS_SEQUENCE, tuple(asn() for _ in range(rng.randrange(1, 5))))]
    if rng.random() < 0.2:
        path.append((AS_SET, tuple(sorted({asn() for _ in range(2)}))))
    if family == IPV4_UNICAST:
        nh = bytes((192, 0, 2, rng.randrange(1, 250)))
    else:
        nh = pfx.addr_from_str(f"2001:db8::{rng.randrange(1, 0xFFFF):x}")
    return intern(
        AttrSet(
            origin=rng.randrange(3),
            as_path=tuple(path),
            next_hop=nh,
            med=rng.choice([None, rng.randrange(1, 1 << 32)]),
            local_pref=rng.choice([None, rng.randrange(1, 1 << 32)]),
            communities=tuple(rng.randrange(1 << 32) for _ in range(rng.randrange(4))),
            large_communities=tuple(
                (rng.randrange(1 << 32), rng.randrange(1 << 32), rng.randrange(1 << 32))
                for _ in range(rng.randrange(3))
            ),
        )
    )


def random_prefixes(rng: random.Random, family, n: int) -> list[bytes]:
    out = set()
    while len(out) < n:
        if family == IPV4_UNICAST:
            plen = rng.randrange(8, 33)
            addr = rng.randrange(1 << 32) & ~((1 << (32 - plen)) - 1)
            out.add(
                pfx.from_str(
                    f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}/{plen}"
                )
            )
        else:
            plen = rng.randrange(16, 129)
            addr = (0x20010DB8 << 96 | rng.randrange(1 << 96)) & ~((1 << (128 - plen)) - 1)
            import ipaddress

            out.add(pfx.from_network(ipaddress.IPv6Network((addr, plen))))
    return sorted(out)


def build_rib(seed=7, per_family=40):
    """``{(family, prefix): [(peer_index, attrs, path_id)]}`` and the best path of each."""
    rng = random.Random(seed)
    rib: dict = {}
    for fam in (IPV4_UNICAST, IPV6_UNICAST):
        for p in random_prefixes(rng, fam, per_family):
            paths = []
            for i, peer in enumerate(PEERS):
                if rng.random() < 0.6:
                    attrs = random_attrs(rng, fam)
                    if fam in peer.addpath:
                        paths.append((i, attrs, rng.randrange(1, 1 << 32)))
                        if rng.random() < 0.5:  # a second path of the same neighbor
                            paths.append((i, random_attrs(rng, fam), rng.randrange(1, 1 << 32)))
                    else:
                        paths.append((i, attrs, None))
            if paths:
                rib[(fam, p)] = paths
    return rib


def snapshot(rib) -> TableSnapshot:
    routes = [(fam, p, paths[0][1], paths) for (fam, p), paths in rib.items()]
    return TableSnapshot(
        router_id=ROUTER_ID,
        local_as=LOCAL_AS,
        peers=[DumpPeer(p.router_id, p.address, p.asn) for p in PEERS],
        routes=routes,
        view_name="bgpd",
        timestamp=1_700_000_000,
    )


def expected_dump(rib) -> list[Route]:
    rows = []
    for (fam, p), paths in rib.items():
        rows.append(expected_row("rib", False, "0.0.0.0", LOCAL_AS, fam, p, paths[0][1]))
        for i, attrs, pid in paths:
            peer = PEERS[i]
            key = (pid, p) if pid is not None else p
            rows.append(expected_row("rib", False, peer.address, peer.asn, fam, key, attrs))
    return rows


def test_table_dump_read_by_bgpdump_and_mrtparse(tmp_path, need_bgpdump, need_mrtparse):
    rib = build_rib()
    path = str(tmp_path / "rib.mrt")
    stats = write_table_dump(path, snapshot(rib))
    expected = sorted(expected_dump(rib))
    assert stats["entries"] == len(expected)
    assert os.path.getsize(path) == stats["bytes"]
    assert any(r.path_id is not None for r in expected)  # ADD-PATH entries are in there
    assert any(":" in r.prefix for r in expected) and any("." in r.prefix for r in expected)
    assert sorted(bgpdump(path)) == expected
    assert sorted(mrtparse(path)) == expected


async def test_async_table_dump_writes_the_same_file(tmp_path, need_bgpdump):
    rib = build_rib(seed=11)
    a, b = str(tmp_path / "a.mrt"), str(tmp_path / "b.mrt.gz")
    write_table_dump(a, snapshot(rib))
    stats = await dump_table(b, snapshot(rib), slice_prefixes=7, chunk=512)
    assert stats["prefixes"] == len(rib)
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    assert sorted(bgpdump(b)) == sorted(bgpdump(a)) == sorted(expected_dump(rib))


def _open(asn, rid, **kw) -> bytes:
    return Open(asn=asn, hold_time=90, router_id=rid).encode()


async def test_update_log_read_by_bgpdump_and_mrtparse(tmp_path, need_bgpdump, need_mrtparse):
    """Every message of three sessions (both directions), over three 15-minute files."""
    clock = [1_700_000_000.0 - 1_700_000_000 % 900 + 880.5]  # 20 s before a boundary
    w = UpdateLogWriter(str(tmp_path / "updates.%Y%m%d.%H%M.mrt"), 900, clock=lambda: clock[0])
    rib = build_rib(seed=3, per_family=30)
    expected: list[Route] = []

    def tick(dt=0.000123):
        clock[0] += dt

    for i, peer in enumerate(PEERS):
        m = peer.mrt
        for old, new in (("Idle", "Connect"), ("Connect", "OpenSent"), ("OpenSent", "OpenConfirm")):
            w.state_change(m, old, new)
            expected.append(
                Route(
                    "state",
                    False,
                    peer.address,
                    peer.asn,
                    f"{_n(old)}->{_n(new)}",
                    None,
                    "",
                    "",
                    "",
                    0,
                    0,
                    (),
                    (),
                )
            )
            tick()
        w.message(m, _open(LOCAL_AS, ROUTER_ID), sent=True)
        w.message(m, _open(peer.asn, peer.router_id))
        w.message(m, KEEPALIVE_BYTES)
        w.state_change(m, "OpenConfirm", "Established")
        expected.append(
            Route("state", False, peer.address, peer.asn, "5->6", None, "", "", "", 0, 0, (), ())
        )
        tick(20.0)  # the first session crosses the rotation boundary here
        # received: this peer's paths, packed per attribute set as a peer would
        for fam in (IPV4_UNICAST, IPV6_UNICAST):
            ctx = Context(as4=peer.as4, add_path_tx=peer.addpath)
            items = [
                ((pid, p) if pid is not None else p, attrs)
                for (f, p), paths in rib.items()
                if f == fam
                for j, attrs, pid in paths
                if j == i
            ]
            for key, attrs in items:
                msgs = pack_announce(fam, attrs, [key], ctx)
                w.messages(m, msgs)
                expected.append(
                    expected_row("announce", False, peer.address, peer.asn, fam, key, attrs)
                )
                tick()
            # sent: the best paths of the other peers' prefixes, then withdraw half of them
            out = [
                (p, paths[0][1]) for (f, p), paths in rib.items() if f == fam and paths[0][0] != i
            ]
            for p, attrs in out:
                key = (1, p) if fam in peer.addpath else p
                w.messages(m, pack_announce(fam, attrs, [key], ctx), sent=True)
                expected.append(
                    expected_row("announce", True, peer.address, peer.asn, fam, key, attrs)
                )
                tick()
            gone = [(1, p) if fam in peer.addpath else p for p, _ in out[::2]]
            w.messages(m, pack_withdraw(fam, gone, ctx), sent=True)
            expected += [
                expected_row("withdraw", True, peer.address, peer.asn, fam, k, None) for k in gone
            ]
            tick()
        w.message(m, Notification(6, 2, b"").encode(), sent=True)
        w.state_change(m, "Established", "Idle")
        expected.append(
            Route("state", False, peer.address, peer.asn, "6->1", None, "", "", "", 0, 0, (), ())
        )
        tick(450.0)
    await asyncio.sleep(0)
    w.close()
    assert w.stats()["dropped_records"] == 0
    files = sorted(str(tmp_path / f) for f in os.listdir(tmp_path))
    assert len(files) == 3 and w.files == files  # rotated twice, once inside a session
    ours = [(ROUTER_ID, LOCAL_AS), ("2001:db8::fe", LOCAL_AS)]
    got_dump = [r for f in files for r in bgpdump(f, local=ours)]
    got_parse = [r for f in files for r in mrtparse(f)]
    assert got_dump == expected
    assert got_parse == expected


def _n(state: str) -> int:
    return {
        "Idle": 1,
        "Connect": 2,
        "Active": 3,
        "OpenSent": 4,
        "OpenConfirm": 5,
        "Established": 6,
    }[state]

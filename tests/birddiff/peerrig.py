"""Scripted BGP peers for the differential tests: one process, many peers, one namespace.

Run as ``python peerrig.py SPEC.json CONTROL.sock`` inside the peers' network namespace
(``ip netns exec``). Each peer of the spec is a small but complete BGP speaker of its own:
it binds its own address, either listens for the node (the node's protocol is active) or
connects to it (the node's protocol is ``passive on``: Calico's mesh rule), exchanges OPENs
(multiprotocol for the file's family, four-octet AS, route refresh, graceful restart so
that both daemons send End-of-RIB, ADD-PATH both ways when the spec asks), keeps the
session up with KEEPALIVEs, announces the spec's routes followed by End-of-RIB, answers a
ROUTE-REFRESH with them again, and records what the node sends: its Adj-RIB-In after every
UPDATE (``(path id, prefix) -> attributes``, so ADD-PATH paths are kept apart), End-of-RIB,
NOTIFICATIONs, decode errors.

The control socket (a unix socket in the test's temp dir, reachable from outside the
namespace) takes one JSON object per line and answers one:

* ``{"cmd": "state"}``: every peer's ``state``, ``eor``, ``established`` count, ``rib``
  (``[[path_id, prefix, attrs], ...]`` sorted), ``updates``, ``notifications``, ``errors``;
* ``{"cmd": "announce", "peer": NAME, "routes": [...]}``: announce (or replace) routes;
* ``{"cmd": "withdraw", "peer": NAME, "routes": [{"prefix": P, "path_id": N}, ...]}``.

A route is ``{"prefix", "path_id" (1), "origin" (0), "as_path" ([ASN...], one
AS_SEQUENCE; a nested list is an AS_SET), "next_hop", "med", "local_pref", "communities"
(["a:b"]), "large_communities" (["a:b:c"]), "ext_communities" ([[type, subtype, asn,
value]]), "atomic_aggregate"}``. Attributes are encoded by bgpd's wire codec (the same
bytes for the BIRD side and the bgpd side), and what the node sends is decoded by it too,
keeping everything it sent (LOCAL_PREF from eBGP included: the decode context is iBGP's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bgpd.wire import (  # noqa: E402
    AttrPool,
    AttrSet,
    Context,
    Framer,
    Keepalive,
    MpReach,
    MpUnreach,
    Open,
    Update,
    decode_message,
)
from bgpd.wire import prefix as pfx  # noqa: E402
from bgpd.wire.capabilities import (  # noqa: E402
    AddPath,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
)
from bgpd.wire.capabilities import RouteRefresh as RouteRefreshCap  # noqa: E402
from bgpd.wire.constants import (  # noqa: E402
    AS_SEQUENCE,
    AS_SET,
    ATTR_LOCAL_PREF,
    KEEPALIVE,
    NOTIFICATION,
    OPEN,
    ROUTE_REFRESH,
    UPDATE,
)

HOLD_TIME = 90
KEEPALIVE_EVERY = 20.0
RETRY = 0.5


def _ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def _prefix(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text, strict=False))


def _comm(text: str) -> int:
    a, b = text.split(":")
    return (int(a) << 16) | int(b)


def attrs_of(route: dict, ipv6: bool) -> AttrSet:
    """The AttrSet of a spec route (the IPv4 next hop in NEXT_HOP; IPv6's goes in MP_REACH)."""
    path = []
    seq: list = []
    for x in route.get("as_path", []):
        if isinstance(x, list):
            if seq:
                path.append((AS_SEQUENCE, tuple(seq)))
                seq = []
            path.append((AS_SET, tuple(x)))
        else:
            seq.append(int(x))
    if seq:
        path.append((AS_SEQUENCE, tuple(seq)))
    ext = tuple(
        bytes((t, s)) + int(a).to_bytes(2, "big") + int(v).to_bytes(4, "big")
        for t, s, a, v in route.get("ext_communities", [])
    )
    return AttrSet(
        origin=route.get("origin", 0),
        as_path=tuple(path),
        next_hop=None if ipv6 else _ip(route["next_hop"]),
        med=route.get("med"),
        local_pref=route.get("local_pref"),
        atomic_aggregate=route.get("atomic_aggregate", False),
        communities=tuple(_comm(c) for c in route.get("communities", [])),
        large_communities=tuple(
            tuple(int(x) for x in c.split(":")) for c in route.get("large_communities", [])
        ),
        ext_communities=ext,
    )


def _path_text(path) -> list:
    out: list = []
    for t, asns in path or ():
        if t == AS_SET:
            out.append(sorted(asns))
        else:
            out.extend(asns)
    return out


def describe(attrs: AttrSet, next_hop: bytes | None) -> dict:
    """What the node sent, as plain data (comparable, printable)."""
    out: dict = {}
    if attrs.origin is not None:
        out["origin"] = attrs.origin
    if attrs.as_path is not None:
        out["as_path"] = _path_text(attrs.as_path)
    nh = next_hop if next_hop is not None else attrs.next_hop
    if nh:
        hops = [nh[:16], nh[16:]] if len(nh) == 32 else [nh]
        # a link-local second next hop differs per namespace (MAC-derived): only its presence
        out["next_hop"] = [pfx.addr_to_str(hops[0])] + (["<link-local>"] if len(hops) > 1 else [])
    if attrs.med is not None:
        out["med"] = attrs.med
    if attrs.local_pref is not None:
        out["local_pref"] = attrs.local_pref
    if attrs.atomic_aggregate:
        out["atomic_aggregate"] = True
    if attrs.aggregator is not None:
        asn, rid = attrs.aggregator
        out["aggregator"] = [asn, pfx.addr_to_str(rid)]
    if attrs.communities:
        out["communities"] = [f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities]
    if attrs.originator_id is not None:
        out["originator_id"] = pfx.addr_to_str(attrs.originator_id)
    if attrs.cluster_list:
        out["cluster_list"] = [pfx.addr_to_str(c) for c in attrs.cluster_list]
    if attrs.ext_communities:
        out["ext_communities"] = [e.hex() for e in attrs.ext_communities]
    if attrs.large_communities:
        out["large_communities"] = [":".join(map(str, c)) for c in attrs.large_communities]
    if attrs.unknown:
        out["unknown"] = [[f, c, v.hex()] for f, c, v in attrs.unknown]
    return out


class Peer:
    def __init__(self, spec: dict, ipv6: bool) -> None:
        self.spec = spec
        self.name = spec["name"]
        self.ipv6 = ipv6
        self.family = (2, 1) if ipv6 else (1, 1)
        self.routes: dict = {}  # (path_id, prefix text) -> route spec
        for r in spec.get("routes", []):
            self.routes[(r.get("path_id", 1), r["prefix"])] = r
        self.state = "Idle"
        self.established = 0
        self.eor = False
        self.rib: dict = {}  # (path_id, prefix text) -> attrs dict
        self.updates = 0
        self.notifications: list = []
        self.errors: list = []
        self.writer: asyncio.StreamWriter | None = None
        self.ctx: Context | None = None
        self.add_path_tx = False
        self.server = None
        self.task: asyncio.Task | None = None

    # --- the TCP side -------------------------------------------------------------------------

    def _socket(self) -> socket.socket:
        af = socket.AF_INET6 if self.ipv6 else socket.AF_INET
        s = socket.socket(af, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # GTSM (ttl security on) wants 255; harmless for the others
        if self.ipv6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        else:
            s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 255)
        return s

    async def start(self) -> None:
        sp = self.spec
        if sp["connect"]:
            self.task = asyncio.create_task(self._connect_loop())
        else:
            s = self._socket()
            s.bind((sp["local"], sp["listen_port"]))
            s.listen(4)
            s.setblocking(False)
            self.server = await asyncio.start_server(self._accepted, sock=s)

    async def _connect_loop(self) -> None:
        sp = self.spec
        loop = asyncio.get_running_loop()
        while True:
            s = self._socket()
            s.bind((sp["local"], 0))
            s.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(s, (sp["remote"], sp["port"])), 3)
            except (TimeoutError, OSError):
                s.close()
                await asyncio.sleep(RETRY)
                continue
            reader, writer = await asyncio.open_connection(sock=s, limit=1 << 20)
            await self._session(reader, writer)
            await asyncio.sleep(RETRY)

    async def _accepted(self, reader, writer) -> None:
        if self.writer is not None:  # one session at a time
            writer.close()
            return
        await self._session(reader, writer)

    # --- the BGP side -------------------------------------------------------------------------

    def _open(self) -> bytes:
        sp = self.spec
        afi, safi = self.family
        caps = [
            Multiprotocol(afi, safi),
            RouteRefreshCap(),
            FourOctetAS(sp["asn"]),
            GracefulRestart(120, families=((afi, safi, False),)),
        ]
        if sp.get("add_path"):
            caps.append(AddPath(((afi, safi, 3),)))
        return Open(
            asn=sp["asn"], hold_time=HOLD_TIME, router_id=sp["router_id"], capabilities=tuple(caps)
        ).encode()

    async def _session(self, reader, writer) -> None:
        self.writer = writer
        self.state = "OpenSent"
        self.rib = {}
        self.eor = False
        framer = Framer(65535)
        pool = AttrPool()
        ka: asyncio.Task | None = None
        try:
            writer.write(self._open())
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                for msg_type, body in framer.feed(data):
                    if msg_type == OPEN:
                        m = decode_message(OPEN, body)
                        self._negotiate(m, pool)
                        writer.write(Keepalive().encode())
                        self.state = "OpenConfirm"
                    elif msg_type == KEEPALIVE:
                        if self.state == "OpenConfirm":
                            self.state = "Established"
                            self.established += 1
                            self._send_all(writer)
                            ka = asyncio.create_task(self._keepalives(writer))
                    elif msg_type == UPDATE:
                        try:
                            self._update(self._decode(body))
                        except Exception as e:  # a decode error is a finding, not a crash
                            self.errors.append(f"{type(e).__name__}: {e}")
                    elif msg_type == NOTIFICATION:
                        n = decode_message(NOTIFICATION, body)
                        self.notifications.append(f"{n.code}/{n.subcode} {n.reason}")
                    elif msg_type == ROUTE_REFRESH:
                        self._send_all(writer)
                if framer.error is not None:
                    self.errors.append(f"framing: {framer.error}")
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            if ka is not None:
                ka.cancel()
            with contextlib.suppress(Exception):
                writer.close()
            self.writer = None
            self.state = "Idle"

    def _negotiate(self, m: Open, pool: AttrPool) -> None:
        fam = self.family
        ap_rx = ap_tx = frozenset()
        if self.spec.get("add_path"):
            for c in m.capabilities:
                if isinstance(c, AddPath):
                    for afi, safi, sr in c.entries:
                        if (afi, safi) == fam:
                            if sr & 2:  # it sends: we receive path ids
                                ap_rx = frozenset((fam,))
                            if sr & 1:
                                ap_tx = frozenset((fam,))
        self.add_path_tx = bool(ap_tx)
        as4 = any(isinstance(c, FourOctetAS) for c in m.capabilities)
        self.ctx = Context(as4=as4, ibgp=True, add_path_rx=ap_rx, add_path_tx=ap_tx, pool=pool)

    def _decode(self, body: bytes) -> Update:
        """Decoded as iBGP (LOCAL_PREF kept whoever sends it); toward an eBGP peer the
        missing LOCAL_PREF that iBGP decoding reports is no error."""
        u = decode_message(UPDATE, body, self.ctx)
        e = u.error
        if (
            e is not None
            and not self.spec["ibgp"]
            and e.code == 3
            and e.subcode == 3
            and e.data == bytes((ATTR_LOCAL_PREF,))
        ):
            u.error = None
        return u

    async def _keepalives(self, writer) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_EVERY)
            writer.write(Keepalive().encode())

    def _nlri(self, path_id: int, prefix: str):
        p = _prefix(prefix)
        return (path_id, p) if self.add_path_tx else p

    def _encode(self, route: dict) -> bytes:
        attrs = attrs_of(route, self.ipv6)
        nlri = [self._nlri(route.get("path_id", 1), route["prefix"])]
        if self.ipv6:
            nh = _ip(route["next_hop"])
            u = Update(attrs=attrs, mp_reach=MpReach(2, 1, nh, nlri))
        else:
            u = Update(attrs=attrs, nlri=nlri)
        return u.encode(self.ctx)

    def _withdraw(self, path_id: int, prefix: str) -> bytes:
        nlri = [self._nlri(path_id, prefix)]
        if self.ipv6:
            return Update(mp_unreach=MpUnreach(2, 1, nlri)).encode(self.ctx)
        return Update(withdrawn=nlri).encode(self.ctx)

    def _eor(self) -> bytes:
        if self.ipv6:
            return Update(mp_unreach=MpUnreach(2, 1, [])).encode(self.ctx)
        return Update().encode(self.ctx)

    def _send_all(self, writer) -> None:
        for r in self.routes.values():
            writer.write(self._encode(r))
        writer.write(self._eor())

    def _update(self, u: Update) -> None:
        self.updates += 1
        if u.eor() is not None:
            self.eor = True
            return
        if u.error is not None:
            self.errors.append(f"treat-as-withdraw: {u.error}")
        for _fam, keys in u.unreach():
            for k in keys:
                self.rib.pop(self._key(k), None)
        nh = u.mp_reach.next_hop if u.mp_reach is not None else None
        for fam, attrs, keys in u.reach():
            d = describe(attrs, nh if fam != (1, 1) else None)
            for k in keys:
                self.rib[self._key(k)] = d

    def _key(self, k) -> tuple:
        afi = self.family[0]
        if isinstance(k, tuple):
            return (k[0], pfx.to_str(k[1], afi))
        return (0, pfx.to_str(k, afi))

    # --- control ------------------------------------------------------------------------------

    def announce(self, routes: list) -> None:
        for r in routes:
            self.routes[(r.get("path_id", 1), r["prefix"])] = r
            if self.writer is not None and self.state == "Established":
                self.writer.write(self._encode(r))

    def withdraw(self, routes: list) -> None:
        for r in routes:
            key = (r.get("path_id", 1), r["prefix"])
            gone = self.routes.pop(key, None) is not None
            if gone and self.writer is not None and self.state == "Established":
                self.writer.write(self._withdraw(*key))

    def report(self) -> dict:
        return {
            "state": self.state,
            "established": self.established,
            "eor": self.eor,
            "rib": sorted([pid, p, a] for (pid, p), a in self.rib.items()),
            "updates": self.updates,
            "notifications": self.notifications,
            "errors": self.errors,
        }


async def main(spec_path: str, control: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    peers = {p["name"]: Peer(p, spec["ipv6"]) for p in spec["peers"]}
    for p in peers.values():
        await p.start()

    async def serve(reader, writer) -> None:
        while line := await reader.readline():
            req = json.loads(line)
            cmd = req["cmd"]
            if cmd == "state":
                out = {n: p.report() for n, p in peers.items()}
            elif cmd == "announce":
                peers[req["peer"]].announce(req["routes"])
                out = {"ok": True}
            elif cmd == "withdraw":
                peers[req["peer"]].withdraw(req["routes"])
                out = {"ok": True}
            else:
                out = {"error": f"unknown command {cmd}"}
            writer.write(json.dumps(out).encode() + b"\n")
            await writer.drain()
        writer.close()

    with contextlib.suppress(FileNotFoundError):
        os.unlink(control)
    server = await asyncio.start_unix_server(serve, control)
    Path(control + ".ready").write_text(str(os.getpid()))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

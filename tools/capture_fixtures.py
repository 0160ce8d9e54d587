#!/usr/bin/env python3
"""Capture byte-exact BGP messages from real BIRD, GoBGP and FRR daemons.

This plays a minimal BGP speaker over a raw TCP socket (hand-built OPEN, KEEPALIVE and
NOTIFICATION; nothing else is ever sent) against a real daemon that is configured to
originate a handful of routes with rich attributes, and records every message in both
directions.  One file per scenario goes to ``tests/fixtures/peers/<scenario>.txt``:

    # comment lines: daemon and version, scenario, daemon config, command
    out <hex of a message we sent>
    in  <hex of a message the daemon sent>

Usage (as root; the daemons bind 127.0.0.x:179):

    python tools/capture_fixtures.py --all
    python tools/capture_fixtures.py --scenario bird_ebgp --scenario frr_ibgp
    python tools/capture_fixtures.py --list

Standard library only, and nothing from ``bgpd``: the fixtures must not depend on the code
they test.  The daemons are started with ``tests/interop/peers.py`` (also stdlib only),
the same harness the interop tests use.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import ipaddress
import select
import shlex
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))
import peers  # noqa: E402  (tests/interop/peers.py)

DEFAULT_OUT = ROOT / "tests" / "fixtures" / "peers"
DAEMON_ADDRESS = "127.0.0.200"
LOCAL_ADDRESS = "127.0.0.201"
OUR_ROUTER_ID = "10.0.0.1"
HOLD_TIME = 90

# ---------------------------------------------------------------------------------------
# Hand-built messages (RFC 4271 §4, RFC 5492 capabilities)
# ---------------------------------------------------------------------------------------

MARKER = b"\xff" * 16
OPEN, UPDATE, NOTIFICATION, KEEPALIVE, ROUTE_REFRESH = 1, 2, 3, 4, 5
AS_TRANS = 23456
AFI_IPV4, AFI_IPV6, SAFI_UNICAST = 1, 2, 1


def message(msg_type: int, body: bytes = b"") -> bytes:
    return MARKER + struct.pack("!HB", 19 + len(body), msg_type) + body


def capability(code: int, value: bytes = b"") -> bytes:
    return struct.pack("!BB", code, len(value)) + value


def our_capabilities(asn: int, as4: bool = True) -> list[bytes]:
    caps = [
        capability(1, struct.pack("!HBB", AFI_IPV4, 0, SAFI_UNICAST)),  # multiprotocol
        capability(1, struct.pack("!HBB", AFI_IPV6, 0, SAFI_UNICAST)),
        capability(2),  # route refresh
    ]
    if as4:
        caps.append(capability(65, struct.pack("!I", asn)))  # four-octet AS
    caps += [
        capability(69, struct.pack("!HBB", AFI_IPV4, SAFI_UNICAST, 3)),  # add-path send+receive
        # graceful restart: no R bit, restart time 120, ipv4+ipv6 unicast, F bit clear
        capability(
            64,
            struct.pack("!H", 120)
            + struct.pack("!HBB", AFI_IPV4, SAFI_UNICAST, 0)
            + struct.pack("!HBB", AFI_IPV6, SAFI_UNICAST, 0),
        ),
        capability(6),  # extended message
    ]
    return caps


def open_message(asn: int, router_id: str, hold: int = HOLD_TIME, as4: bool = True) -> bytes:
    my_as = asn if asn <= 0xFFFF else AS_TRANS
    caps = b"".join(our_capabilities(asn, as4))
    # all capabilities in one optional parameter of type 2 (RFC 5492 allows either form)
    params = struct.pack("!BB", 2, len(caps)) + caps
    body = struct.pack("!BHH4sB", 4, my_as, hold, socket.inet_aton(router_id), len(params))
    return message(OPEN, body + params)


def notification(code: int, subcode: int, data: bytes = b"") -> bytes:
    return message(NOTIFICATION, struct.pack("!BB", code, subcode) + data)


KEEPALIVE_MSG = message(KEEPALIVE)

# ---------------------------------------------------------------------------------------
# Just enough parsing to know where we are (never used to build the fixtures)
# ---------------------------------------------------------------------------------------


@dataclass
class UpdateInfo:
    withdrawn: bool = False
    announced: bool = False
    eor: tuple[int, int] | None = None


def parse_update(msg: bytes) -> UpdateInfo:
    body = msg[19:]
    wlen = struct.unpack_from("!H", body, 0)[0]
    alen = struct.unpack_from("!H", body, 2 + wlen)[0]
    attrs = body[4 + wlen : 4 + wlen + alen]
    nlri = body[4 + wlen + alen :]
    info = UpdateInfo(withdrawn=wlen > 0, announced=bool(nlri))
    if wlen == 0 and alen == 0 and not nlri:
        info.eor = (AFI_IPV4, SAFI_UNICAST)
        return info
    pos = 0
    only_unreach = True
    while pos < len(attrs):
        flags, code = attrs[pos], attrs[pos + 1]
        if flags & 0x10:
            length = struct.unpack_from("!H", attrs, pos + 2)[0]
            value = attrs[pos + 4 : pos + 4 + length]
            pos += 4 + length
        else:
            length = attrs[pos + 2]
            value = attrs[pos + 3 : pos + 3 + length]
            pos += 3 + length
        if code == 14:
            info.announced = True
            only_unreach = False
        elif code == 15:
            afi, safi = struct.unpack_from("!HB", value, 0)
            if len(value) == 3:
                info.eor = (afi, safi)
            else:
                info.withdrawn = True
        else:
            only_unreach = False
    if info.eor and not only_unreach:
        info.eor = None
    return info


def describe(msg: bytes) -> str:
    kind = msg[18]
    if kind == UPDATE:
        u = parse_update(msg)
        if u.eor:
            return f"UPDATE End-of-RIB afi {u.eor[0]}"
        what = [w for w, on in (("announce", u.announced), ("withdraw", u.withdrawn)) if on]
        return "UPDATE " + "+".join(what)
    if kind == NOTIFICATION:
        return f"NOTIFICATION {msg[19]}/{msg[20]}"
    return {OPEN: "OPEN", KEEPALIVE: "KEEPALIVE", ROUTE_REFRESH: "ROUTE-REFRESH"}.get(
        kind, f"type {kind}"
    )


# ---------------------------------------------------------------------------------------
# The speaker
# ---------------------------------------------------------------------------------------


class Session:
    """A raw BGP connection that records every message in both directions."""

    def __init__(self, local: str, remote: str, port: int = 179, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(
                    (remote, port), timeout=5, source_address=(local, 0)
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.transcript: list[tuple[str, bytes]] = []
        self.closed = False
        self.last_keepalive = time.monotonic()

    def send(self, msg: bytes) -> None:
        self.transcript.append(("out", msg))
        self.sock.sendall(msg)

    def receive(self, timeout: float) -> bytes | None:
        """Next complete message from the peer, or None on timeout/close."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 19:
                length = struct.unpack_from("!H", self.buffer, 16)[0]
                if self.buffer[:16] != MARKER or length < 19:
                    raise RuntimeError(f"bad header: {self.buffer[:19].hex()}")
                if len(self.buffer) >= length:
                    msg, self.buffer = self.buffer[:length], self.buffer[length:]
                    self.transcript.append(("in", msg))
                    return msg
            if self.closed:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self.buffer += data

    def close(self) -> None:
        self.sock.close()


@dataclass
class Scenario:
    name: str
    daemon: str  # bird | gobgp | frr
    summary: str
    daemon_asn: int
    our_asn: int
    routes: list[dict[str, Any]] = field(default_factory=list)
    neighbor: dict[str, Any] = field(default_factory=dict)
    open_asn: int | None = None  # AS we claim in our OPEN (bad-AS scenarios)
    as4: bool = True  # our OPEN carries the four-octet AS capability
    withdraw: list[str] = field(default_factory=list)
    announce: list[dict[str, Any]] = field(default_factory=list)
    expect_notification: bool = False
    daemon_kwargs: dict[str, Any] = field(default_factory=dict)


def _ebgp_routes(asn: int, n: int) -> list[dict[str, Any]]:
    """A handful of routes with rich attributes, distinct per daemon (n = 10, 20, 30)."""
    return [
        {
            "prefix": f"10.{n}.1.0/24",
            "next_hop": f"192.0.2.{n}",
            "communities": [f"{asn}:1", f"{asn}:100"],
            "large_communities": [f"{asn}:1:2"],
            "med": 50,
            "as_path_prepend": [64999, 64998],
        },
        {
            "prefix": f"10.{n}.2.0/24",
            "next_hop": f"192.0.2.{n}",
            "communities": ["65535:65281"],  # NO_EXPORT
            "as_path_prepend": 2,
            "origin": "incomplete",
        },
        {"prefix": f"10.{n}.128.0/17", "next_hop": f"192.0.2.{n + 1}", "origin": "egp"},
        {
            "prefix": f"2001:db8:{n}:1::/64",
            "next_hop": f"2001:db8::{n}",
            "communities": [f"{asn}:6"],
            "large_communities": [f"{asn}:6:6"],
            "med": 60,
        },
        {"prefix": f"2001:db8:{n}:2::/64", "next_hop": f"2001:db8::{n}"},
    ]


def _ibgp_routes(asn: int, n: int) -> list[dict[str, Any]]:
    routes = _ebgp_routes(asn, n)
    routes[0]["local_pref"] = 200
    routes[1]["local_pref"] = 50
    routes[3]["local_pref"] = 300
    for r in routes:
        r.pop("as_path_prepend", None)
    routes[0]["as_path_prepend"] = [64999]
    return routes


def _runtime(n: int) -> tuple[list[str], list[dict[str, Any]]]:
    withdraw = [f"10.{n}.128.0/17", f"2001:db8:{n}:2::/64"]
    announce = [{"prefix": f"10.{n}.3.0/24", "next_hop": f"192.0.2.{n}", "med": 7}]
    return withdraw, announce


def scenarios() -> dict[str, Scenario]:
    out: dict[str, Scenario] = {}

    def add(s: Scenario) -> None:
        out[s.name] = s

    for daemon, asn, n in (("bird", 65010, 10), ("gobgp", 65020, 20), ("frr", 65030, 30)):
        w, a = _runtime(n)
        add(
            Scenario(
                name=f"{daemon}_ebgp",
                daemon=daemon,
                summary=f"eBGP: {daemon} AS{asn} -> us AS65001; IPv4 and IPv6 (MP_REACH) routes "
                "with communities, large communities, MED, AS path prepends, origins; "
                "then withdraw two routes and announce one; End-of-RIB (GR negotiated)",
                daemon_asn=asn,
                our_asn=65001,
                routes=_ebgp_routes(asn, n),
                neighbor={
                    "add_path": "both" if daemon in ("bird", "gobgp") else None,
                    "graceful_restart": True,
                },
                withdraw=w,
                announce=a,
            )
        )
        add(
            Scenario(
                name=f"{daemon}_ibgp",
                daemon=daemon,
                summary=f"iBGP: {daemon} AS{asn} <-> us AS{asn}; LOCAL_PREF, MED, communities, "
                "large communities, IPv4 and IPv6; withdraw two routes, announce one",
                daemon_asn=asn,
                our_asn=asn,
                routes=_ibgp_routes(asn, n),
                neighbor={
                    "add_path": "both" if daemon == "frr" else None,
                    "graceful_restart": True,
                },
                withdraw=w,
                announce=a,
            )
        )
        add(
            Scenario(
                name=f"{daemon}_badas_notification",
                daemon=daemon,
                summary=f"{daemon} expects AS65001 but our OPEN says AS65002: the daemon's "
                "OPEN (if it sends one first) and its NOTIFICATION 2/2 (Bad Peer AS)",
                daemon_asn=asn,
                our_asn=65001,
                open_asn=65002,
                expect_notification=True,
            )
        )
    add(
        Scenario(
            name="bird_as2",
            daemon="bird",
            summary="BIRD AS4200000001 -> us, a two-octet-AS speaker (AS65001, our OPEN has no "
            "four-octet AS capability): BIRD's OPEN says AS_TRANS 23456; its UPDATEs carry a "
            "two-octet AS_PATH with 23456 and an AS4_PATH with the real four-octet ASNs",
            daemon_asn=4200000001,
            our_asn=65001,
            as4=False,
            routes=[
                {
                    "prefix": "10.40.1.0/24",
                    "next_hop": "192.0.2.40",
                    "as_path_prepend": [4200000002, 65099],
                    "communities": ["65001:40"],
                },
                {"prefix": "10.40.2.0/24", "next_hop": "192.0.2.40"},
                {"prefix": "2001:db8:40::/48", "next_hop": "2001:db8::40"},
            ],
            neighbor={"graceful_restart": True},
        )
    )
    add(
        Scenario(
            name="gobgp_linklocal",
            daemon="gobgp",
            summary="eBGP: GoBGP AS65020 -> us; an IPv6 route whose next hop is link-local "
            "(fe80::20) next to a global one",
            daemon_asn=65020,
            our_asn=65001,
            routes=[
                {"prefix": "2001:db8:21::/48", "next_hop": "fe80::20"},
                {"prefix": "2001:db8:22::/48", "next_hop": "2001:db8::20"},
            ],
            neighbor={"graceful_restart": True},
        )
    )
    return out


# ---------------------------------------------------------------------------------------
# Running a scenario
# ---------------------------------------------------------------------------------------


def daemon_version(kind: str) -> str:
    cmd = {
        "bird": ["bird", "--version"],
        "gobgp": ["gobgpd", "--version"],
        "frr": ["/usr/lib/frr/bgpd", "--version"],
    }[kind]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except OSError as e:
        return f"unknown ({e})"
    text = (res.stdout + res.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def wait_for(session: Session, cond: Callable[[bytes], bool], timeout: float) -> bool:
    """Read messages (answering nothing) until one satisfies ``cond``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = session.receive(max(0.05, deadline - time.monotonic()))
        if msg is None:
            if session.closed:
                return False
            continue
        if cond(msg):
            return True
        if msg[18] == NOTIFICATION:
            return False
    return False


def drain(session: Session, quiet: float) -> None:
    """Read until the peer has been silent for ``quiet`` seconds."""
    while session.receive(quiet) is not None:
        pass


def run_scenario(
    sc: Scenario, daemon_address: str, local_address: str, log: Callable[[str], None]
) -> tuple[peers.BgpPeer, list[tuple[str, bytes]]]:
    cls = peers.PEER_CLASSES[sc.daemon]
    neighbor = {"address": local_address, "asn": sc.our_asn, "passive": True, **sc.neighbor}
    peer = cls(
        name=sc.name,
        address=daemon_address,
        asn=sc.daemon_asn,
        router_id="10.0.0.2",
        neighbors=[neighbor],
        routes=sc.routes,
        log_level="debug",
        **sc.daemon_kwargs,
    )
    try:
        peer.start()  # GoBGP: start() has already added the routes through its API
        session = Session(local_address, daemon_address)
        try:
            session.send(
                open_message(sc.open_asn or sc.our_asn, OUR_ROUTER_ID, HOLD_TIME, as4=sc.as4)
            )
            if sc.expect_notification:
                got = wait_for(session, lambda m: m[18] == NOTIFICATION, 15)
                drain(session, 1.0)
                if not got:
                    raise RuntimeError(f"{sc.name}: no NOTIFICATION from {sc.daemon}")
                return peer, session.transcript
            if not wait_for(session, lambda m: m[18] == OPEN, 15):
                raise RuntimeError(f"{sc.name}: no OPEN from {sc.daemon}")
            session.send(KEEPALIVE_MSG)
            if not wait_for(session, lambda m: m[18] == KEEPALIVE, 15):
                raise RuntimeError(f"{sc.name}: session did not come up")
            log("  established")
            # Initial table, up to End-of-RIB for both families.
            eors: set[tuple[int, int]] = set()

            def eor_seen(m: bytes) -> bool:
                if m[18] == UPDATE:
                    u = parse_update(m)
                    if u.eor:
                        eors.add(u.eor)
                return len(eors) >= 2

            if not wait_for(session, eor_seen, 20):
                log(f"  warning: End-of-RIB seen for {sorted(eors)} only")
            drain(session, 1.5)
            for prefix in sc.withdraw:
                log(f"  withdraw {prefix}")
                peer.withdraw(prefix)
                ok = wait_for(session, lambda m: m[18] == UPDATE and parse_update(m).withdrawn, 15)
                if not ok:
                    raise RuntimeError(f"{sc.name}: no withdrawal for {prefix}")
            for route in sc.announce:
                log(f"  announce {route['prefix']}")
                peer.announce(**route)
                ok = wait_for(session, lambda m: m[18] == UPDATE and parse_update(m).announced, 15)
                if not ok:
                    raise RuntimeError(f"{sc.name}: no UPDATE for {route['prefix']}")
            drain(session, 1.5)
            session.send(notification(6, 2))  # Cease / Administrative Shutdown
            drain(session, 0.5)
            return peer, session.transcript
        finally:
            session.close()
    except BaseException:
        sys.stderr.write(peer._log_tail(60) + "\n")
        peer.cleanup()
        raise


def write_fixture(
    path: Path,
    sc: Scenario,
    peer: peers.BgpPeer,
    transcript: list[tuple[str, bytes]],
    command: str,
    daemon_address: str,
    local_address: str,
) -> None:
    lines = [
        f"# scenario: {sc.name}",
        f"# daemon: {sc.daemon} - {daemon_version(sc.daemon)}",
        f"# summary: {sc.summary}",
        f"# daemon {daemon_address} AS{sc.daemon_asn} router-id 10.0.0.2 (passive); "
        f"us {local_address} AS{sc.our_asn} router-id {OUR_ROUTER_ID}, hold {HOLD_TIME}",
        f"# our OPEN: my-AS {sc.open_asn or sc.our_asn}"
        + (" (as claimed, not as configured on the daemon)" if sc.open_asn else "")
        + "; capabilities MP ipv4/ipv6 unicast, route refresh, "
        + ("four-octet AS, " if sc.as4 else "NO four-octet AS, ")
        + "ADD-PATH ipv4 send/receive, graceful restart (120 s, ipv4+ipv6), extended message",
        f"# after End-of-RIB: withdraw {sc.withdraw or 'nothing'}; "
        f"announce {[r['prefix'] for r in sc.announce] or 'nothing'}; "
        + ("then we send NOTIFICATION 6/2" if not sc.expect_notification else ""),
        f"# produced by: {command}",
        f"# captured: {_dt.date.today().isoformat()}",
        "# format: one message per line, '<direction> <hex>', in = daemon -> us, "
        "out = us -> daemon; every message complete with marker, length and type",
        f"# daemon config ({peer.config_path.name}):",
    ]
    config = peer.config_text().replace(str(peer.workdir), "$WORKDIR")
    lines += [f"#   {line}" if line else "#" for line in config.splitlines()]
    if sc.daemon == "gobgp" and peer.originated:
        lines.append("# routes added after start with `gobgp global rib add` (see peers.py):")
        lines += [f"#   {r}" for r in sc.routes]
    lines += [f"{d} {m.hex()}" for d, m in transcript]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    all_scenarios = scenarios()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="capture every scenario")
    ap.add_argument("--scenario", action="append", default=[], choices=sorted(all_scenarios))
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    ap.add_argument("--daemon-address", default=DAEMON_ADDRESS)
    ap.add_argument("--local-address", default=LOCAL_ADDRESS)
    args = ap.parse_args(argv)
    if args.list:
        for s in all_scenarios.values():
            print(f"{s.name:28} {s.summary}")
        return 0
    chosen = list(all_scenarios) if args.all else args.scenario
    if not chosen:
        ap.error("give --all or --scenario NAME")
    for addr in (args.daemon_address, args.local_address):
        if not ipaddress.ip_address(addr).is_loopback:
            ap.error(f"{addr} is not a loopback address")
        if not peers.tcp_port_free(addr, 179):
            ap.error(f"{addr}:179 is in use")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in chosen:
        sc = all_scenarios[name]
        print(f"{name}: {sc.daemon}", flush=True)
        command = "python tools/capture_fixtures.py " + (
            "--all" if args.all else shlex.join(["--scenario", name])
        )
        try:
            peer, transcript = run_scenario(
                sc, args.daemon_address, args.local_address, lambda t: print(t, flush=True)
            )
        except Exception as e:  # keep going with the other scenarios
            print(f"  FAILED: {e}", flush=True)
            failed.append(name)
            continue
        try:
            path = args.out / f"{name}.txt"
            write_fixture(
                path, sc, peer, transcript, command, args.daemon_address, args.local_address
            )
        finally:
            peer.cleanup()
        summary = ", ".join(describe(m) for d, m in transcript if d == "in")
        print(f"  wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {summary}")
    if failed:
        print(f"failed: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Connection faults over real sockets: a frozen peer, half-open connections, garbage OPENs and
a wrong TCP MD5 key.

Every test runs the speaker in-process with two stable neighbors, a feeder (iBGP) and a
receiver (eBGP, so that it is sent every best route), plus the faulty neighbor. Throughout a
fault the stable sessions must stay untouched (no NOTIFICATION, no reconnect, no flap), no
exception may reach the event loop and nothing may be logged at error level. Afterwards the
Loc-RIB equals what a clean run fed the same final tables gives (:func:`faultkit.clean_view`),
the receiver holds exactly what the speaker says it advertises to it, and no descriptor, task
or connection is left over (:class:`faultkit.Leaks`).
"""

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import structlog
from faultkit import Leaks, RawPeer, clean_view, rib_view, speaker_config, start_speaker, until
from hostile_peer import P, ibgp_route, message
from needs import skip_or_fail

from bgpd.api.render import path_to_json
from bgpd.fsm import State
from bgpd.fsm import protocol as fsm_protocol
from bgpd.session import peer as session_peer
from bgpd.session import tcp
from bgpd.wire import Context, Framer, Keepalive, Notification, Open, decode_message
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh

ROOT = Path(__file__).resolve().parents[2]
SPEAKER = "127.0.5.1"
SPEAKER_ID = "10.0.5.1"
FEEDER = "127.0.5.2"
RECEIVER = "127.0.5.3"
ASN = 65000
RECEIVER_AS = 65010
BASE_PORT = 26000 + os.getpid() % 2000

# The feeder's routes, and routes a faulty peer announces (some over the feeder's, so that the
# Loc-RIB holds several candidates for them).
FEEDER_ROUTES = [
    ibgp_route([P(f"10.50.{i}.0/24") for i in range(8)], med=10),
    ibgp_route([P(f"10.60.{i}.0/24") for i in range(4)], next_hop="192.0.2.2", med=20),
]


def faulty_routes(tag: int) -> list[bytes]:
    return [
        ibgp_route([P(f"10.60.{i}.0/24") for i in range(4)], next_hop="192.0.2.9", med=5),
        ibgp_route([P(f"10.{70 + tag}.{i}.0/24") for i in range(6)], next_hop="192.0.2.9"),
    ]


def prefix_count(feeds: dict[str, list[bytes]]) -> int:
    """Distinct prefixes the UPDATEs in ``feeds`` leave announced (the Loc-RIB's size)."""
    have = set()
    for updates in feeds.values():
        for u in updates:
            m = decode_message(u[18], u[19:], Context(as4=True, ibgp=True))
            for fam, keys in m.unreach():
                have.difference_update((fam, k) for k in keys)
            for fam, _attrs, keys in m.reach():
                have.update((fam, k) for k in keys)
    return len(have)


# --- the test bed ------------------------------------------------------------------------------


class Bed:
    """A speaker with a stable feeder and receiver and the faulty neighbors ``faulty``."""

    def __init__(self, port: int, faulty: list[dict], **top) -> None:
        self.port = port
        self.neighbors = [
            {"address": FEEDER, "asn": ASN, "passive": True},
            {"address": RECEIVER, "asn": RECEIVER_AS, "passive": True},
            *faulty,
        ]
        # The clean run: same neighbors, without what only concerns the transport (a RawPeer
        # has no MD5 key and sends no KEEPALIVEs).
        transport_only = ("password", "hold_time", "passive")
        self.clean_neighbors = [
            {**{k: v for k, v in n.items() if k not in transport_only}, "passive": True}
            for n in self.neighbors
        ]
        self.top = top
        self.errors: list[dict] = []
        self.logs: list[dict] = []
        self.peers: list[RawPeer] = []

    async def __aenter__(self) -> "Bed":
        loop = asyncio.get_running_loop()
        self._old_handler = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        self._capture = structlog.testing.capture_logs()
        self.logs = self._capture.__enter__()
        cfg = speaker_config(SPEAKER, self.port, self.neighbors, router_id=SPEAKER_ID, **self.top)
        self.speaker = await start_speaker(cfg)
        self.feeder = await self.peer(FEEDER, ASN)
        self.receiver = await self.peer(RECEIVER, RECEIVER_AS)
        for u in FEEDER_ROUTES:
            self.feeder.send(u)
        await self.feeder.drain()
        await self.converged({FEEDER: FEEDER_ROUTES})
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        loop = asyncio.get_running_loop()
        try:
            for p in self.peers:
                await p.close()
            await self.speaker.stop()
        finally:
            loop.set_exception_handler(self._old_handler)
            self._capture.__exit__(None, None, None)
        if exc_type is not None:
            for e in self.logs[-60:]:  # shown with the failure
                print(e)
            return
        assert self.errors == [], f"exceptions reached the event loop: {self.errors}"
        bad = [
            e for e in self.logs if e.get("log_level") in ("error", "critical") or e.get("exc_info")
        ]
        assert bad == [], f"the speaker logged errors: {bad}"

    async def peer(self, local: str, asn: int, timeout: float = 10.0, **kw) -> RawPeer:
        p = RawPeer(local, SPEAKER, self.port, asn, **kw)
        self.peers.append(p)
        return await p.connect(timeout=timeout)

    async def drop(self, p: RawPeer) -> None:
        """Close a faulty peer's connection; the speaker notices (FIN) and forgets it."""
        await p.close()
        self.peers.remove(p)
        s = self.session(p.local)
        assert await until(lambda: s.conn is None and s.other is None, 5), s.state

    # --- checks ---------------------------------------------------------------------------

    def session(self, address: str):
        return self.speaker.neighbors[address].session

    def loc_count(self) -> int:
        return sum(len(loc.table) for loc in self.speaker.rde.rib.loc.values())

    def advertised(self) -> dict:
        """What the speaker says it sends the receiver: prefix -> path."""
        routes = self.speaker.command("show_routes", neighbor=RECEIVER, advertised=True, limit=None)
        return {e["prefix"]: e["paths"][0] for e in routes["routes"]}

    def received(self) -> dict:
        """What the receiver holds (its UPDATEs applied in order), in the same form."""
        attrs_of: dict = {}
        for u in self.receiver.updates():
            for fam, keys in u.unreach():
                for k in keys:
                    attrs_of.pop((fam, k), None)
            for fam, attrs, keys in u.reach():
                for k in keys:
                    attrs_of[(fam, k)] = attrs
        rendered: dict = {}
        out = {}
        for (fam, k), attrs in attrs_of.items():
            if id(attrs) not in rendered:
                rendered[id(attrs)] = path_to_json(attrs, None, "bgp", best=True)
            out[pfx.to_str(k, fam[0])] = rendered[id(attrs)]
        return out

    def stable_untouched(self) -> None:
        for p in (self.feeder, self.receiver):
            assert not p.eof and p.errors == [] and p.notifications() == [], p.local
            s = self.session(p.local)
            assert s.established and s.fsm.stats.flaps == 0, (p.local, s.state)
            assert s.fsm.stats.messages_in["OPEN"] == 1, p.local  # never reconnected

    async def converged(self, feeds: dict[str, list[bytes]], timeout: float = 20.0) -> int:
        """Wait until the Loc-RIB has the prefixes of ``feeds`` and the receiver all of them."""
        n = prefix_count(feeds)
        assert await until(lambda: self.loc_count() == n, timeout, step=0.05), (
            f"the Loc-RIB has {self.loc_count()} prefixes, expected {n}"
        )

        def receiver_ok() -> bool:
            adv = self.advertised()
            return len(adv) == n and self.received() == adv

        assert await until(receiver_ok, timeout, step=0.1), (
            f"the receiver holds {len(self.received())} prefixes, the speaker advertises "
            f"{len(self.advertised())}, the Loc-RIB has {n}"
        )
        return n

    async def check(self, feeds: dict[str, list[bytes]]) -> None:
        """Loc-RIB == a clean run's; the receiver in step; the stable sessions untouched."""
        n = await self.converged(feeds)
        clean = await clean_view(
            SPEAKER, self.port + 1, self.clean_neighbors, feeds, expect=n, router_id=SPEAKER_ID
        )
        view = rib_view(self.speaker)
        if view != clean:
            diff = {k: (view.get(k), clean.get(k)) for k in set(view) | set(clean)}
            diff = {k: v for k, v in diff.items() if v[0] != v[1]}
            raise AssertionError(f"the Loc-RIB differs from a clean run's: {diff}")
        self.stable_untouched()

    def log_events(self, event: str, peer: str) -> list[dict]:
        return [e for e in self.logs if e.get("event") == event and e.get("peer") == peer]


# --- raw connections ---------------------------------------------------------------------------


class Raw:
    """A bare TCP connection from ``local`` to the speaker, for bytes that are not a session."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, local: str, port: int, timeout: float = 5.0) -> "Raw":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((local, 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (SPEAKER, port)), timeout)
        except BaseException:
            sock.close()
            raise
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def shutdown(self) -> None:
        """Half-close: the speaker reads EOF after the bytes sent."""
        self.writer.write_eof()

    async def until_eof(self, timeout: float = 5.0, keepalive: bool = False) -> tuple[list, bool]:
        """Everything the speaker sends until it closes (or, with ``keepalive``, until it
        sends a KEEPALIVE: it accepted the OPEN): (decoded messages, closed?)."""
        data = bytearray()
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        eof = False
        while loop.time() < end:
            try:
                chunk = await asyncio.wait_for(self.reader.read(65536), end - loop.time())
            except TimeoutError:
                break
            except ConnectionError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            data += chunk
            if keepalive and "KEEPALIVE" in kinds(decode_all(bytes(data), partial=True)):
                break
        return decode_all(bytes(data)), eof

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def decode_all(data: bytes, partial: bool = False) -> list:
    """The messages in ``data``: OPEN and NOTIFICATION decoded, others as their type."""
    framer = Framer(65535)
    out = [decode_message(t, b) if t in (1, 3) else t for t, b in framer.feed(data)]
    assert framer.error is None, f"the speaker sent bytes that do not frame: {data.hex()}"
    assert partial or not len(framer), f"the speaker sent part of a message: {data.hex()}"
    return out


def kinds(messages: list) -> list:
    """Each message as OPEN, KEEPALIVE or (code, subcode) of a NOTIFICATION."""
    out = []
    for m in messages:
        if isinstance(m, Open):
            out.append("OPEN")
        elif isinstance(m, Notification):
            out.append((m.code, m.subcode))
        elif m == 4:
            out.append("KEEPALIVE")
        else:
            out.append(m)
    return out


# --- 1. a peer frozen with SIGSTOP -------------------------------------------------------------

# A BGP peer in a process of its own (so that it can be frozen): connects, exchanges OPENs,
# announces the UPDATEs given as hex arguments, sends a KEEPALIVE every hold/3 seconds, prints
# what happens ("established", "notification CODE SUBCODE", "closed") and connects again
# whenever its connection ends.
PEER_SCRIPT = r"""
import select
import socket
import sys
import time

from bgpd.wire import Framer, Keepalive, Open, decode_message
from bgpd.wire.capabilities import FourOctetAS, Multiprotocol, RouteRefresh

local, remote = sys.argv[1], sys.argv[2]
port, asn, hold = (int(a) for a in sys.argv[3:6])
updates = [bytes.fromhex(h) for h in sys.argv[6:]]
caps = (Multiprotocol(1, 1), Multiprotocol(2, 1), RouteRefresh(), FourOctetAS(asn))
rid = local.replace("127.", "10.")
OPEN = Open(asn=asn, hold_time=hold, router_id=rid, capabilities=caps).encode()
KEEPALIVE = Keepalive().encode()


def say(*words):
    print(*words, flush=True)


def session():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((local, 0))
    sock.settimeout(5)
    try:
        sock.connect((remote, port))
        sock.sendall(OPEN)
        framer = Framer(65535)
        established = False
        interval = hold / 3
        next_keepalive = time.monotonic() + interval
        while True:
            ready, _, _ = select.select([sock], [], [], max(0.0, next_keepalive - time.monotonic()))
            if ready:
                data = sock.recv(65536)
                if not data:
                    say("closed")
                    return
                for msg_type, body in framer.feed(data):
                    if msg_type == 1:
                        sock.sendall(KEEPALIVE)
                    elif msg_type == 4 and not established:
                        established = True
                        say("established")
                        for u in updates:
                            sock.sendall(u)
                    elif msg_type == 3:
                        n = decode_message(3, body)
                        say("notification", n.code, n.subcode)
            if time.monotonic() >= next_keepalive:
                sock.sendall(KEEPALIVE)
                next_keepalive += interval
    except OSError as e:
        say("error", e)
    finally:
        sock.close()


while True:
    session()
    time.sleep(0.2)
"""


async def test_sigstopped_peer_is_dropped_by_the_hold_timer_and_comes_back():
    """Hold time 3 s. The peer is frozen: 4/0 after the hold time, its routes withdrawn
    everywhere; thawed, it reads the NOTIFICATION, connects again and its routes are back."""
    faulty = "127.0.6.1"
    port = BASE_PORT
    routes = faulty_routes(1)
    cfg = {"address": faulty, "asn": ASN, "passive": True, "hold_time": 3}
    async with Bed(port, [cfg]) as bed:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PEER_SCRIPT,
            faulty,
            SPEAKER,
            str(port),
            str(ASN),
            "3",
            *(u.hex() for u in routes),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        lines: list[str] = []

        async def read_lines() -> None:
            async for line in proc.stdout:
                lines.append(line.decode().strip())

        reader = asyncio.create_task(read_lines())
        # The baseline holds the process's pipes and the task reading them (no await since
        # the start: the peer cannot have connected yet).
        leaks = Leaks(bed.speaker)
        stopped = False
        try:
            both = {FEEDER: FEEDER_ROUTES, faulty: routes}
            assert await until(lambda: "established" in lines, 10), lines
            await bed.check(both)
            s = bed.session(faulty)
            assert s.fsm.negotiated.hold_time == 3

            os.kill(proc.pid, signal.SIGSTOP)
            stopped = True
            frozen = time.monotonic()
            assert await until(lambda: not s.established, 8, step=0.05), (
                "the hold timer never expired"
            )
            waited = time.monotonic() - frozen
            # 3 s after the last KEEPALIVE, which came at most 1 s before the freeze.
            assert 1.5 < waited < 5.0, waited
            assert s.last_error == "Hold Timer Expired", s.last_error
            downs = bed.log_events("session down", faulty)
            assert downs and downs[-1]["notification_sent"] == "4/0 Hold Timer Expired", downs
            await bed.check({FEEDER: FEEDER_ROUTES})  # withdrawn from the Loc-RIB and the receiver

            os.kill(proc.pid, signal.SIGCONT)
            stopped = False
            assert await until(lambda: lines.count("established") == 2, 10), lines
            # It read our 4/0, then the end of the connection (or, if it sent a KEEPALIVE
            # first, the reset that answered it).
            assert lines[:2] == ["established", "notification 4 0"], lines
            assert lines[2] == "closed" or lines[2].startswith("error"), lines
            await bed.check(both)
            await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 1}, allow_fds=1)
        finally:
            if stopped:
                os.kill(proc.pid, signal.SIGCONT)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            await reader
        # The process is gone: the kernel closed its socket, the session and its routes go.
        await bed.check({FEEDER: FEEDER_ROUTES})
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


# --- 2. half-open connections ---------------------------------------------------------------


async def test_silent_connections_do_not_block_the_real_peer():
    """Connections from the neighbor's address that never send an OPEN (three silent, one
    with half a header) must not keep the real peer out: each newer inbound connection
    replaces an older one that has not sent its OPEN (as FRR does), the last one is replaced
    by the real peer, which is Established at once. Connections that arrive while the
    session is Established are refused."""
    faulty = "127.0.6.2"
    port = BASE_PORT + 2
    routes = faulty_routes(2)
    async with Bed(port, [{"address": faulty, "asn": ASN, "passive": True}]) as bed:
        leaks = Leaks(bed.speaker)
        silent = [await Raw.open(faulty, port) for _ in range(3)]
        half = await Raw.open(faulty, port)
        half.send(b"\xff" * 10)
        silent.append(half)
        listener = bed.speaker.listeners[0]
        assert await until(lambda: listener.accepted + listener.refused >= 6)  # 2 stable + 4
        await asyncio.sleep(0.2)

        started = time.monotonic()
        peer = await bed.peer(faulty, ASN, timeout=5)
        assert time.monotonic() - started < 3
        for r in silent:
            msgs, eof = await r.until_eof()
            # Our OPEN, then Cease/Connection Collision Resolution when it was replaced.
            assert eof and kinds(msgs) == ["OPEN", (6, 7)], kinds(msgs)

        # While Established, a new connection from the peer's address is refused at once.
        late = [await Raw.open(faulty, port) for _ in range(2)]
        for r in late:
            msgs, eof = await r.until_eof()
            assert eof and msgs == [], kinds(msgs)
        for r in silent + late:
            await r.close()

        for u in routes:
            peer.send(u)
        await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
        s = bed.session(faulty)
        assert s.established and not peer.eof and peer.notifications() == []
        assert s.fsm.stats.flaps == 0
        await bed.drop(peer)
        await bed.check({FEEDER: FEEDER_ROUTES})
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


async def test_connection_without_open_is_dropped_after_the_opensent_hold_time(monkeypatch):
    """A lone connection that never sends its OPEN holds the session in OpenSent until the
    OpenSent hold timer (RFC 4271: 4 minutes; 2 s here) sends 4/0 and closes it; the peer then
    gets in at once (the idle-hold back-off does not refuse it)."""
    monkeypatch.setattr(fsm_protocol, "OPENSENT_HOLD_TIME", 2.0)
    faulty = "127.0.6.2"
    port = BASE_PORT + 4
    routes = faulty_routes(2)
    async with Bed(port, [{"address": faulty, "asn": ASN, "passive": True}]) as bed:
        leaks = Leaks(bed.speaker)
        s = bed.session(faulty)
        silent = await Raw.open(faulty, port)
        assert await until(lambda: s.state == State.OPENSENT)
        msgs, eof = await silent.until_eof(timeout=6)
        assert eof and kinds(msgs) == ["OPEN", (4, 0)], kinds(msgs)
        await silent.close()
        assert s.state == State.IDLE
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})

        started = time.monotonic()
        peer = await bed.peer(faulty, ASN, timeout=5)
        assert time.monotonic() - started < 2
        for u in routes:
            peer.send(u)
        await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
        await bed.drop(peer)
        await bed.check({FEEDER: FEEDER_ROUTES})
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


async def test_vanished_peer_that_stops_reading_is_dropped_and_its_socket_released():
    """An Established peer goes silent without a FIN and stops reading (a hung daemon, a dead
    host): the hold timer (3 s) ends the session and withdraws its routes. Meanwhile the
    feeder announces enough routes to back up the speaker's output to it, so the 4/0 can
    never be sent: the connection must still be released (after the close timeout), not kept
    open forever for a peer that will never read."""
    faulty = "127.0.6.3"
    port = BASE_PORT + 6
    routes = faulty_routes(3)
    many = [
        ibgp_route([P(f"10.{100 + i // 250}.{i % 250}.0/24") for i in range(k, k + 500)], med=1)
        for k in range(0, 20000, 500)
    ]
    cfg = {"address": faulty, "asn": ASN, "passive": True, "rr_client": True}
    async with Bed(port, [cfg]) as bed:
        leaks = Leaks(bed.speaker)
        peer = await bed.peer(faulty, ASN, hold_time=3, rcvbuf=4096)
        for u in routes:
            peer.send(u)
        await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
        s = bed.session(faulty)
        assert s.fsm.negotiated.hold_time == 3

        # It stops reading, while the feeder announces more than the kernel's buffers hold;
        # it keeps the session up with KEEPALIVEs until the speaker's output to it has backed
        # up, then goes silent.
        peer.stop_reading()
        # (A small send buffer on the speaker's side too, so that fewer routes fill it.)
        s.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        for u in many:
            bed.feeder.send(u)
        await bed.feeder.drain()
        for _ in range(100):
            if s.write_buffer_size() > 0:
                break
            peer.send(Keepalive().encode())
            await asyncio.sleep(0.2)
        assert s.established and s.write_buffer_size() > 0, "the output never backed up"
        gone = time.monotonic()
        assert await until(lambda: not s.established, 10, step=0.05)
        assert 2.0 < time.monotonic() - gone < 6
        assert s.last_error == "Hold Timer Expired", s.last_error
        await bed.check({FEEDER: FEEDER_ROUTES + many})
        # The peer's socket stays open (a dead host closes nothing, and runs nothing: its read
        # task goes): only that socket may remain.
        peer._task.cancel()
        await leaks.check(
            connections={FEEDER: 1, RECEIVER: 1, faulty: 0},
            allow_fds=1,
            timeout=session_peer.CLOSE_TIMEOUT + 5,
        )
        aborted = bed.log_events("connection aborted: queued output not sent", faulty)
        assert len(aborted) == 1 and aborted[0]["queued"] > 0, aborted
        await bed.drop(peer)
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


# --- 2c. which of the peer's connections is kept ---------------------------------------------


async def test_peer_connection_past_its_open_is_kept_and_a_newer_one_refused():
    """A connection from the peer that brought its OPEN (OpenConfirm) is not replaced: a newer
    connection from the same address is refused (as BIRD does), and the first comes up."""
    faulty = "127.0.6.6"
    port = BASE_PORT + 12
    async with Bed(port, [{"address": faulty, "asn": ASN, "passive": True}]) as bed:
        leaks = Leaks(bed.speaker)
        s = bed.session(faulty)
        first = RawPeer(faulty, SPEAKER, port, ASN)
        bed.peers.append(first)
        await first.connect(established=False)
        assert await until(lambda: s.state == State.OPENCONFIRM)
        newer = await Raw.open(faulty, port)
        msgs, eof = await newer.until_eof()
        await newer.close()
        assert eof and msgs == [], kinds(msgs)
        first.send(Keepalive().encode())
        assert await until(lambda: s.established)
        assert first.notifications() == [] and not first.eof
        await bed.drop(first)
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


class PeerListener:
    """A listening socket at the faulty peer's address, for the speaker's own connections.

    ``backlog`` 0 with one connection left unaccepted in its queue (``jam``) makes the kernel
    drop further SYNs: the speaker's connection attempt then hangs until ``unjam`` (its SYN is
    sent again after about a second)."""

    def __init__(self, address: str, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(0)
        self.sock.setblocking(False)
        self.address, self.port = address, port
        self.filler: socket.socket | None = None
        self.accepted: list[socket.socket] = []

    def jam(self) -> None:
        self.filler = socket.socket()
        self.filler.bind(("127.0.6.99", 0))
        self.filler.connect((self.address, self.port))

    async def accept(self, timeout: float = 5.0) -> socket.socket:
        loop = asyncio.get_running_loop()
        conn, _ = await asyncio.wait_for(loop.sock_accept(self.sock), timeout)
        conn.setblocking(False)
        self.accepted.append(conn)
        return conn

    async def unjam(self) -> None:
        conn = await self.accept()
        conn.close()
        self.accepted.remove(conn)

    def close(self) -> None:
        for sock in (self.sock, self.filler, *self.accepted):
            if sock is not None:
                sock.close()


async def until_eof_sock(sock: socket.socket, timeout: float = 5.0) -> tuple[list, bool]:
    """Like :meth:`Raw.until_eof`, on a plain non-blocking socket."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    end = loop.time() + timeout
    while loop.time() < end:
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), end - loop.time())
        except TimeoutError:
            break
        except ConnectionError:
            return decode_all(bytes(data)), True
        if not chunk:
            return decode_all(bytes(data)), True
        data += chunk
    return decode_all(bytes(data)), False


@pytest.mark.parametrize("silent_first", [False, True], ids=["ours-first", "silent-first"])
async def test_silent_connection_is_replaced_and_the_collision_with_ours_resolved(silent_first):
    """An active neighbor: our connection and a silent one from the peer collide (either may
    have come first, and be the session's main connection); the real peer's connection then
    replaces the silent one, and RFC 4271 §6.8 decides between ours and the peer's: the peer's
    identifier is higher, so its connection is kept and ours gets Cease 6/7."""
    faulty = "127.0.6.7"
    port = BASE_PORT + 14
    peer_port = BASE_PORT + 16
    listener = PeerListener(faulty, peer_port)
    cfg = {
        "address": faulty,
        "asn": ASN,
        "port": peer_port,
        "source_address": SPEAKER,
    }
    try:
        if silent_first:
            listener.jam()  # our first attempt hangs
        async with Bed(port, [cfg]) as bed:
            s = bed.session(faulty)
            if silent_first:
                silent = await Raw.open(faulty, port)
                assert await until(lambda: s.conn is not None and not s.conn.outbound)
                await listener.unjam()
                ours = await listener.accept()
                assert await until(lambda: s.other is not None and s.other.outbound)
            else:
                ours = await listener.accept()
                assert await until(lambda: s.conn is not None and s.conn.outbound)
                silent = await Raw.open(faulty, port)
                assert await until(lambda: s.other is not None and not s.other.outbound)
            assert s.state == State.OPENSENT
            peer = await bed.peer(faulty, ASN, timeout=5)
            assert await until(lambda: s.established)
            msgs, eof = await silent.until_eof()
            await silent.close()
            assert eof and kinds(msgs) == ["OPEN", (6, 7)], kinds(msgs)
            msgs, eof = await until_eof_sock(ours)
            assert eof and kinds(msgs) == ["OPEN", (6, 7)], kinds(msgs)
            assert s.conn is not None and not s.conn.outbound and s.other is None
            assert peer.notifications() == [] and not peer.eof
            events = bed.log_events("connection collision", faulty)
            assert [e["keep"] for e in events] == ["keep_inbound"], events
            routes = faulty_routes(7)
            for u in routes:
                peer.send(u)
            await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
            listener.close()  # our next attempts are refused at once
            await bed.drop(peer)
            await bed.check({FEEDER: FEEDER_ROUTES})
    finally:
        listener.close()


@pytest.mark.parametrize("peer_as", [65020, 64900])
async def test_collision_between_equal_identifiers_is_decided_by_the_as_numbers(peer_as):
    """An eBGP peer may have our BGP identifier (RFC 6286 §2.2). When its connection collides
    with ours, the one opened by the side with the larger AS number is kept (§2.3): with AS
    65020 the peer's, with AS 64900 ours (the peer then completes the session on it)."""
    faulty = "127.0.6.8"
    port = BASE_PORT + 18
    peer_port = BASE_PORT + 20
    listener = PeerListener(faulty, peer_port)
    cfg = {"address": faulty, "asn": peer_as, "port": peer_port, "source_address": SPEAKER}
    try:
        async with Bed(port, [cfg]) as bed:
            s = bed.session(faulty)
            ours = await listener.accept()
            assert await until(lambda: s.conn is not None and s.conn.outbound)
            theirs = RawPeer(faulty, SPEAKER, port, peer_as, router_id=SPEAKER_ID)
            bed.peers.append(theirs)
            await theirs.connect(established=False)
            keep = "keep_inbound" if peer_as > ASN else "keep_outbound"
            assert await until(lambda: bed.log_events("connection collision", faulty), 5)
            assert [e["keep"] for e in bed.log_events("connection collision", faulty)] == [keep]
            if keep == "keep_inbound":
                theirs.send(Keepalive().encode())
                msgs, eof = await until_eof_sock(ours)
                assert eof and kinds(msgs) == ["OPEN", (6, 7)], kinds(msgs)
                up = theirs
            else:
                assert await until(lambda: theirs.eof)
                assert [(n.code, n.subcode) for n in theirs.notifications()] == [(6, 7)]
                listener.accepted.remove(ours)
                up = RawPeer(faulty, SPEAKER, port, peer_as, router_id=SPEAKER_ID)
                bed.peers.append(up)
                await adopt(up, ours, established=True, timeout=5)
            assert await until(lambda: s.established)
            assert s.conn.outbound == (keep == "keep_outbound")
            assert up.notifications() == [] and not up.eof
            listener.close()  # our next attempts are refused at once
            await bed.drop(up)
            bed.stable_untouched()
    finally:
        listener.close()


# --- 3. OPENs with garbage ---------------------------------------------------------------------


def open_body(
    asn: int = ASN,
    hold: int = 90,
    router_id: str = "10.0.6.4",
    caps: tuple | None = None,
    version: int = 4,
) -> bytes:
    caps = caps if caps is not None else (Multiprotocol(1, 1), RouteRefresh(), FourOctetAS(asn))
    body = bytearray(
        Open(asn=asn, hold_time=hold, router_id=router_id, capabilities=caps).encode()[19:]
    )
    body[0] = version
    return bytes(body)


def with_params(params: bytes, opt_len: int | None = None) -> bytes:
    """An OPEN body with the optional parameters ``params`` (raw) and ``opt_len``."""
    fixed = open_body(caps=())[:9]
    n = len(params) if opt_len is None else opt_len
    return fixed + bytes((n,)) + params


def raw_message(
    msg_type: int, body: bytes, length: int | None = None, marker=b"\xff" * 16
) -> bytes:
    n = 19 + len(body) if length is None else length
    return marker + n.to_bytes(2, "big") + bytes((msg_type,)) + body


GOOD_CAPS = bytes((2, 6, 65, 4)) + (ASN).to_bytes(4, "big")  # parameter 2: four-octet AS

# (name, bytes, what the speaker sends after its OPEN: [(code, subcode)] of a NOTIFICATION,
# [] for a close without one, "any" for at most one header or OPEN error; expected data or
# None for "any").
BAD_OPENS = [
    ("version 3", message(1, open_body(version=3)), [(2, 1)], b"\x00\x04"),
    ("version 5", message(1, open_body(version=5)), [(2, 1)], b"\x00\x04"),
    ("bad peer AS", message(1, open_body(asn=65001)), [(2, 2)], (65001).to_bytes(4, "big")),
    (
        "bad peer AS, two-octet speaker",
        message(1, open_body(asn=65001, caps=(Multiprotocol(1, 1),))),
        [(2, 2)],
        (65001).to_bytes(2, "big"),
    ),
    ("peer AS 0", message(1, open_body(asn=0, caps=())), [(2, 2)], None),
    ("hold time 1", message(1, open_body(hold=1)), [(2, 6)], None),
    ("hold time 2", message(1, open_body(hold=2)), [(2, 6)], None),
    ("identifier 0.0.0.0", message(1, open_body(router_id="0.0.0.0")), [(2, 3)], None),
    (
        "our own identifier (iBGP)",
        message(1, open_body(router_id=SPEAKER_ID)),
        [(2, 3)],
        bytes((10, 0, 5, 1)),
    ),
    (
        "parameter overruns the optional parameters",
        message(1, with_params(bytes((2, 9)) + GOOD_CAPS[2:])),
        [(2, 0)],
        None,
    ),
    (
        "truncated parameter header",
        message(1, with_params(GOOD_CAPS + b"\x02")),
        [(2, 0)],
        None,
    ),
    (
        "capability overruns its parameter",
        message(1, with_params(bytes((2, 6, 65, 9)) + (ASN).to_bytes(4, "big"))),
        [(2, 0)],
        None,
    ),
    (
        "truncated capability header",
        message(1, with_params(bytes((2, 7, 65, 4)) + (ASN).to_bytes(4, "big") + b"\x01")),
        [(2, 0)],
        None,
    ),
    (
        "four-octet AS capability of 2 octets",
        message(1, with_params(bytes((2, 4, 65, 2, 0xFD, 0xE8)))),
        [(2, 0)],
        None,
    ),
    (
        "multiprotocol capability of 3 octets",
        message(1, with_params(bytes((2, 5, 1, 3, 0, 1, 0)) + GOOD_CAPS)),
        [(2, 0)],
        None,
    ),
    (
        "unknown optional parameter (authentication)",
        message(1, with_params(bytes((1, 2, 0, 0)) + GOOD_CAPS)),
        [(2, 4)],
        None,
    ),
    (
        "optional parameters longer than the message",
        message(1, with_params(GOOD_CAPS, opt_len=40)),
        [(1, 2)],
        None,
    ),
    (
        "optional parameters shorter than the message",
        message(1, with_params(GOOD_CAPS + b"\x00\x00\x00", opt_len=len(GOOD_CAPS))),
        [(1, 2)],
        None,
    ),
    ("header length 25 for an OPEN", raw_message(1, b"\x04" * 6, length=25), [(1, 2)], b"\x00\x19"),
    (
        "header length above 4096",
        raw_message(1, open_body(), length=5000),
        [(1, 2)],
        (5000).to_bytes(2, "big"),
    ),
    (
        "header length 18",
        raw_message(1, b"", length=18),
        [(1, 2)],
        (18).to_bytes(2, "big"),
    ),
    (
        "marker not all ones",
        raw_message(1, open_body(), marker=b"\xff" * 15 + b"\xfe"),
        [(1, 1)],
        b"",
    ),
    ("marker all zeros", raw_message(1, open_body(), marker=bytes(16)), [(1, 1)], b""),
    ("KEEPALIVE before OPEN", message(4, b""), [(5, 1)], b"\x04"),
    ("UPDATE before OPEN", ibgp_route([P("10.99.0.0/24")]), [(5, 1)], b"\x02"),
    ("ROUTE-REFRESH before OPEN", message(5, b"\x00\x01\x00\x01"), [(5, 1)], b"\x05"),
    ("unknown message type 7", message(7, b""), [(1, 3)], b"\x07"),
    ("message type 0", message(0, b"\x00" * 10), [(1, 3)], b"\x00"),
    ("NOTIFICATION instead of OPEN", message(3, b"\x06\x02"), [], None),
    (
        "random bytes after a valid header",
        raw_message(1, random.Random(7).randbytes(41)),
        "any",
        None,
    ),
    (
        "OPEN, then garbage",
        message(1, open_body()) + b"\x00" * 19,
        ["KEEPALIVE", (1, 1)],
        None,
    ),
]


def mutated_open(rng: random.Random) -> tuple[bytes, bool]:
    """A randomly damaged OPEN; True when its header (marker, length, type) is damaged too,
    so that the speaker may wait for more (the sender then half-closes)."""
    body = bytearray(
        open_body(
            hold=rng.choice((0, 1, 2, 3, 90, 65535)),
            caps=tuple(
                rng.sample(
                    [Multiprotocol(1, 1), Multiprotocol(2, 1), RouteRefresh(), FourOctetAS(ASN)],
                    rng.randint(0, 4),
                )
            ),
        )
    )
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        if op == 0 and body:  # overwrite a byte
            body[rng.randrange(len(body))] = rng.randrange(256)
        elif op == 1:  # insert random bytes
            i = rng.randint(0, len(body))
            body[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 2 and body:  # truncate
            del body[rng.randint(0, len(body) - 1) :]
        elif op == 3 and len(body) > 9:  # damage the optional parameters length
            body[9] = rng.randrange(256)
        elif op == 4:  # damage a parameter or capability length
            at = [i for i in (11, 13, 19, 21) if i < len(body)]
            if at:
                body[rng.choice(at)] = rng.randrange(256)
    if len(body) > 10 and rng.random() < 0.5:
        # Mostly consistent again, so that decoding gets past the lengths to the parameters.
        body[9] = min(255, len(body) - 10)
    data = bytearray(message(1, bytes(body)))
    header_damaged = rng.random() < 0.25
    if header_damaged:
        i = rng.choice((rng.randrange(16), 16, 17, 18))
        data[i] = rng.randrange(256)
    return bytes(data), header_damaged


async def test_garbage_opens_get_the_right_notification_then_the_peer_gets_in():
    """From the neighbor's address: each bad OPEN of BAD_OPENS gets exactly its NOTIFICATION
    (RFC 4271 §6.1-6.2, RFC 5492, RFC 6608, RFC 7607), then 300 randomly damaged OPENs each
    end in a NOTIFICATION, a close, or (an acceptable one) OpenConfirm, without an exception.
    Then the real peer gets in at once, though the session is in its idle-hold back-off."""
    faulty = "127.0.6.4"
    port = BASE_PORT + 8
    routes = faulty_routes(4)
    async with Bed(port, [{"address": faulty, "asn": ASN, "passive": True}]) as bed:
        leaks = Leaks(bed.speaker)
        s = bed.session(faulty)

        for name, data, want, want_data in BAD_OPENS:
            r = await Raw.open(faulty, port)
            r.send(data)
            msgs, eof = await r.until_eof()
            await r.close()
            k = kinds(msgs)
            assert eof, f"{name}: the speaker did not close ({k})"
            assert k[:1] == ["OPEN"], f"{name}: {k}"
            if want == "any":
                assert k[1:] == [] or (len(k) == 2 and k[1][0] in (1, 2)), f"{name}: {k}"
            else:
                assert k[1:] == want, f"{name}: {k}"
            if want_data is not None:
                assert msgs[-1].data == want_data, f"{name}: data {msgs[-1].data.hex()}"
            assert s.state == State.IDLE, name

        rng = random.Random(20261123)
        outcomes: dict = {}
        for i in range(300):
            data, header_damaged = mutated_open(rng)
            r = await Raw.open(faulty, port)
            r.send(data)
            if header_damaged:
                r.shutdown()  # it may frame as an incomplete message: end it
            msgs, eof = await r.until_eof(keepalive=True)
            await r.close()
            k = kinds(msgs)
            assert k[:1] == ["OPEN"], (i, data.hex(), k)
            rest = k[1:]
            if not eof:  # only an acceptable OPEN leaves the connection open (OpenConfirm)
                assert rest == ["KEEPALIVE"], (i, data.hex(), k)
            else:
                assert rest in ([], ["KEEPALIVE"]) or (
                    len(rest) == 1 and isinstance(rest[0], tuple) and rest[0][0] in (1, 2, 5)
                ), (i, data.hex(), k)
            outcome = str(rest[0]) if rest else "closed"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert await until(lambda: s.state == State.IDLE, 5), (i, s.state)
        assert len(outcomes) >= 5, outcomes  # the mutations reached several kinds of error
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})
        bed.stable_untouched()

        # Right after one more error, in the idle-hold back-off, the real peer gets in at once.
        r = await Raw.open(faulty, port)
        r.send(message(1, open_body(hold=1)))
        msgs, eof = await r.until_eof()
        await r.close()
        assert eof and kinds(msgs) == ["OPEN", (2, 6)]
        assert s.state == State.IDLE and "idle_hold" in s.fsm.timers
        started = time.monotonic()
        peer = await bed.peer(faulty, ASN, timeout=5)
        assert time.monotonic() - started < 2
        for u in routes:
            peer.send(u)
        await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
        await bed.drop(peer)
        await bed.check({FEEDER: FEEDER_ROUTES})
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})


# --- 4. a wrong TCP MD5 key --------------------------------------------------------------------


async def adopt(peer: RawPeer, sock: socket.socket, established: bool, timeout: float) -> None:
    """Run ``peer`` over the connected socket ``sock``: what :meth:`RawPeer.connect` does once
    its own socket is connected (the OPEN exchange, up to Established)."""
    peer.reader, peer.writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    peer._task = asyncio.create_task(peer._read_loop())
    peer.send(peer.open_message())
    if established:
        assert await until(lambda: peer.speaker_open is not None or peer.eof, timeout)
        assert peer.speaker_open is not None, f"closed before OPEN: {peer.received}"
        peer.send(Keepalive().encode())
        assert await until(
            lambda: any(isinstance(m, Keepalive) for m in peer.received) or peer.eof, timeout
        )
        assert not peer.eof, f"closed during the OPEN exchange: {peer.received}"


class KeyedPeer(RawPeer):
    """A :class:`RawPeer` whose socket signs its segments with a TCP MD5 key (RFC 2385)."""

    def __init__(self, *args, password: str, **kw) -> None:
        super().__init__(*args, **kw)
        self.password = password

    async def connect(self, established: bool = True, timeout: float = 10.0) -> "KeyedPeer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.set_md5(sock, self.remote, self.password)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.local, 0))
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (self.remote, self.port)), timeout)
        except BaseException:
            sock.close()
            raise
        await adopt(self, sock, established, timeout)
        return self


def md5_counters() -> dict[str, int]:
    """The kernel's TcpExt MD5 drop counters (this network namespace)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return {k: int(v) for k, v in row.items() if "MD5" in k}
    return {}


def require_md5() -> None:
    sock = socket.socket()
    try:
        tcp.set_md5(sock, SPEAKER, "probe")
    except OSError as e:
        skip_or_fail(f"this kernel has no TCP MD5 (TCP_MD5SIG): {e}")
    finally:
        sock.close()


async def test_wrong_md5_key_costs_the_speaker_nothing():
    """The neighbor has a password. A connection signed with the wrong key and one without a
    key never complete (the kernel drops their SYNs: the connect times out), and the speaker
    never sees them: no state change, no descriptor, no task. The right key then gets
    Established and its routes in."""
    require_md5()
    faulty = "127.0.6.5"
    port = BASE_PORT + 10
    routes = faulty_routes(5)
    cfg = {"address": faulty, "asn": ASN, "passive": True, "password": "the-right-key"}
    async with Bed(port, [cfg]) as bed:
        leaks = Leaks(bed.speaker)
        s = bed.session(faulty)
        listener = bed.speaker.listeners[0]
        before = (s.state, s.fsm.stats.last_state_change, listener.accepted, listener.refused)
        counters = md5_counters()
        loop = asyncio.get_running_loop()
        for key in ("the-wrong-key", None):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if key is not None:
                    tcp.set_md5(sock, SPEAKER, key)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((faulty, 0))
                sock.setblocking(False)
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(loop.sock_connect(sock, (SPEAKER, port)), 1.0)
            finally:
                sock.close()
        after = md5_counters()
        assert after["TCPMD5Failure"] > counters["TCPMD5Failure"]  # the wrong key
        assert after["TCPMD5NotFound"] > counters["TCPMD5NotFound"]  # no key
        assert (
            s.state,
            s.fsm.stats.last_state_change,
            listener.accepted,
            listener.refused,
        ) == before
        assert s.state == State.ACTIVE and s.fsm.stats.messages_in["OPEN"] == 0
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})
        bed.stable_untouched()

        peer = KeyedPeer(faulty, SPEAKER, port, ASN, password="the-right-key")
        bed.peers.append(peer)
        await peer.connect(timeout=5)
        for u in routes:
            peer.send(u)
        await bed.check({FEEDER: FEEDER_ROUTES, faulty: routes})
        await bed.drop(peer)
        await bed.check({FEEDER: FEEDER_ROUTES})
        await leaks.check(connections={FEEDER: 1, RECEIVER: 1, faulty: 0})

"""A hand-rolled BGP speaker for hostile tests: it does the OPEN exchange, then writes whatever
bytes a test gives it and records (decoded) everything the speaker under test sends back.

It deliberately has no FSM: after Established it never answers on its own (no KEEPALIVEs;
the hold time proposed is 90 s, longer than any test), so a test sees the speaker's reaction
to exactly the bytes it injected. ``stop_reading()`` leaves the socket unread so that the
speaker's writes to it back up (a slow peer).
"""

import asyncio
import contextlib
import itertools
import socket
import tempfile

import pytest

from bgpd.config import parse
from bgpd.speaker import Speaker
from bgpd.wire import (
    DEFAULT_POOL,
    AttrPool,
    AttrSet,
    Context,
    Framer,
    Keepalive,
    Notification,
    Open,
    Update,
)
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import tlv
from bgpd.wire.capabilities import (
    AddPath,
    ExtendedMessage,
    FourOctetAS,
    Multiprotocol,
    RouteRefresh,
)
from bgpd.wire.constants import OPEN

ports = itertools.count(22179)

P = pfx.from_str


def ip(text: str) -> bytes:
    return pfx.addr_from_str(text)


def message(msg_type: int, body: bytes) -> bytes:
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + bytes((msg_type,)) + body


def update(attr_block: bytes, nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    """An UPDATE from an already encoded attribute block (lengths filled in)."""
    body = (
        len(withdrawn).to_bytes(2, "big")
        + withdrawn
        + len(attr_block).to_bytes(2, "big")
        + attr_block
        + nlri
    )
    return message(2, body)


def attr(flags: int, code: int, value: bytes) -> bytes:
    return tlv(flags, code, value)


async def until(pred, timeout: float = 10.0, step: float = 0.01) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


class RawPeer:
    """One TCP connection to the speaker, driven by the test."""

    def __init__(
        self,
        local: str,
        remote: str,
        port: int,
        asn: int,
        router_id: str | None = None,
        as4: bool = True,
        extended_message: bool = False,
        add_path: bool = False,
        hold_time: int = 90,
        rcvbuf: int | None = None,
    ) -> None:
        self.local, self.remote, self.port = local, remote, port
        self.asn = asn
        self.router_id = router_id or local.replace("127.", "10.")
        self.as4 = as4
        self.extended_message = extended_message
        self.add_path = add_path
        self.hold_time = hold_time
        self.rcvbuf = rcvbuf
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = Framer(65535)
        self.received: list = []  # decoded messages, in order
        self.raw_received = 0  # octets read
        self.errors: list[Exception] = []  # a message from the speaker that did not decode
        self.eof = False
        self.speaker_open: Open | None = None
        self._task: asyncio.Task | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self.pool = AttrPool()  # decode into a pool of our own, not the speaker's
        # A peer on this host (loopback addresses both ends): the speaker's next hop toward it
        # is its 127.x address, usable here (bgpd.wire.nexthop: loopback_next_hop).
        self.ctx = Context(as4=as4, pool=self.pool, loopback_next_hop=True)

    # --- the OPEN exchange --------------------------------------------------------------

    def open_message(self) -> bytes:
        caps = [Multiprotocol(1, 1), Multiprotocol(2, 1), RouteRefresh()]
        if self.as4:
            caps.append(FourOctetAS(self.asn))
        if self.extended_message:
            caps.append(ExtendedMessage())
        if self.add_path:
            caps.append(AddPath(((1, 1, 3), (2, 1, 3))))
        asn = self.asn if self.as4 or self.asn <= 0xFFFF else 23456
        return Open(
            asn=asn,
            hold_time=self.hold_time,
            router_id=self.router_id,
            capabilities=tuple(caps),
            my_as_field=asn if asn <= 0xFFFF else 23456,
        ).encode()

    async def connect(self, established: bool = True, timeout: float = 10.0) -> "RawPeer":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind((self.local, 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (self.remote, self.port)), timeout)
        self.reader, self.writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        self._task = asyncio.create_task(self._read_loop())
        self.send(self.open_message())
        if established:
            assert await until(lambda: self.speaker_open is not None or self.eof, timeout), (
                "no OPEN from the speaker"
            )
            assert self.speaker_open is not None, f"closed before OPEN: {self.received}"
            self.send(Keepalive().encode())
            # The speaker is Established once it has our KEEPALIVE; its own KEEPALIVE (sent in
            # OpenConfirm) tells us it accepted our OPEN.
            assert await until(
                lambda: any(isinstance(m, Keepalive) for m in self.received) or self.eof, timeout
            )
            assert not self.eof, f"closed during the OPEN exchange: {self.received}"
        return self

    async def _read_loop(self) -> None:
        try:
            while True:
                await self._reading.wait()
                data = await self.reader.read(1 << 16)
                if not data:
                    break
                self.raw_received += len(data)
                for msg_type, body in self.framer.feed(data):
                    self._got(msg_type, body)
                if self.framer.error is not None:
                    raise AssertionError(f"the speaker sent a bad header: {self.framer.error!r}")
        except (ConnectionError, OSError):
            pass
        except Exception as e:  # what the speaker sent does not frame or decode
            self.errors.append(e)
        finally:
            self.eof = True

    def _got(self, msg_type: int, body: bytes) -> None:
        from bgpd.wire import decode_message

        if msg_type == OPEN:
            m = decode_message(msg_type, body)
            self.speaker_open = m
            as4 = self.as4 and any(isinstance(c, FourOctetAS) for c in m.capabilities)
            ext = self.extended_message and any(
                isinstance(c, ExtendedMessage) for c in m.capabilities
            )
            if ext:
                self.framer.max_size = 65535
            ap = frozenset()
            if self.add_path:
                for c in m.capabilities:
                    if isinstance(c, AddPath):
                        ap = frozenset((a, s) for a, s, sr in c.entries if sr & 2)
            peer_as = m.asn
            for c in m.capabilities:
                if isinstance(c, FourOctetAS):
                    peer_as = c.asn
            self.ctx = Context(
                as4=as4,
                ibgp=peer_as == self.asn,  # else LOCAL_PREF, ORIGINATOR_ID... are dropped
                extended_message=ext,
                add_path_rx=ap,
                add_path_tx=ap,
                pool=self.pool,
                loopback_next_hop=True,
            )
        else:
            m = decode_message(msg_type, body, self.ctx)
        self.received.append(m)

    # --- what the test does ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)

    async def drain(self) -> None:
        await self.writer.drain()

    def stop_reading(self) -> None:
        """Read nothing more from the socket: the kernel buffers fill, then the speaker's."""
        self._reading.clear()
        self.writer.transport.pause_reading()

    def resume_reading(self) -> None:
        self._reading.set()
        self.writer.transport.resume_reading()

    def notifications(self) -> list[Notification]:
        return [m for m in self.received if isinstance(m, Notification)]

    def updates(self) -> list[Update]:
        return [m for m in self.received if isinstance(m, Update)]

    def announced(self) -> set:
        """Prefixes currently announced to us (IPv4 and IPv6 keys, in arrival order applied)."""
        have: set = set()
        for u in self.updates():
            for _fam, keys in u.unreach():
                have.difference_update(keys)
            for _fam, _attrs, keys in u.reach():
                have.update(keys)
        return have

    async def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def ibgp_route(
    nlri: list[bytes],
    next_hop: str = "192.0.2.1",
    med: int = 100,
    extra: bytes = b"",
    local_pref: bool = True,
) -> bytes:
    """A good iBGP UPDATE (ORIGIN, empty AS_PATH, NEXT_HOP, MED, LOCAL_PREF + ``extra``)."""
    attrs = AttrSet(
        origin=0,
        as_path=(),
        next_hop=ip(next_hop),
        med=med,
        local_pref=100 if local_pref else None,
    )
    from bgpd.wire import encode_attrs

    return update(encode_attrs(attrs) + extra, b"".join(nlri))


def speaker_config(address: str, port: int, neighbors: list[dict], **top) -> object:
    return parse(
        {
            "router_id": top.pop("router_id", address.replace("127.", "10.")),
            "asn": top.pop("asn", 65000),
            "listen": [{"address": address, "port": port}],
            "control_socket": tempfile.mktemp(prefix="bgpd-hostile-", suffix=".sock"),
            "neighbors": neighbors,
            **top,
        }
    )


async def start_speaker(cfg) -> Speaker:
    s = Speaker(cfg, loop=asyncio.get_running_loop())
    await s.start()
    return s


def routes(speaker: Speaker, prefix: str) -> list[dict]:
    """The paths ``show routes`` lists for ``prefix`` (empty when it is not in the Loc-RIB)."""
    out = speaker.command("show_routes", prefix=prefix)["routes"]
    return out[0]["paths"] if out else []


@pytest.fixture(autouse=True)
def restore_default_pool():
    """The process-wide pool's decode caches as they were before the test (the conftests of
    tests/hostile and tests/faults make this autouse)."""
    before = dict(DEFAULT_POOL.by_raw)
    errors = dict(DEFAULT_POOL.by_raw_error)
    yield
    DEFAULT_POOL.by_raw.clear()
    DEFAULT_POOL.by_raw.update(before)
    DEFAULT_POOL.by_raw_error.clear()
    DEFAULT_POOL.by_raw_error.update(errors)

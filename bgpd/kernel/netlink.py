"""rtnetlink on a raw ``NETLINK_ROUTE`` socket: the messages bgpd sends and reads, and the sockets.

This is the only module that talks to the kernel. Messages are built and parsed here with
:mod:`struct` rather than through pyroute2's message classes: installing a route through
``IPRoute.route("replace", ...)`` costs about 280 µs of Python per route (3,600 routes/s,
pyroute2 0.9.7), while one ``sendmsg`` carrying a thousand hand-built ``RTM_NEWROUTE``
messages installs over 200,000 routes/s (bench/fib.py). Reading is the same: a route dump is
parsed into :class:`RouteMsg` tuples with a few ``unpack_from`` calls per message, skipping
the routes we do not care about before their attributes are decoded.

Sockets can be opened inside another network namespace (``netns``: a name under
``/run/netns`` or a path): a short-lived thread enters the namespace with ``setns(2)``, opens
the socket and exits; the socket stays bound to that namespace. The tests use this to run
the FIB writer and the learner against namespaces they create, never the host's tables.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import struct
import sys
import threading
from typing import NamedTuple

from .routes import hop_order

# --- constants (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h, linux/if_link.h) -------

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # in NLMSG_ERROR: the request's payload was left out
NLM_F_ACK_TLVS = 0x200  # in NLMSG_ERROR: extended ack attributes follow
NLMSGERR_ATTR_MSG = 1

SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_ATTACH_FILTER = 26

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
HOST_GROUPS = (
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
)

AF_UNSPEC = 0
AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
ADDR_LEN = {AF_INET: 4, AF_INET6: 16}

RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_MULTIPATH = 9
RTA_TABLE = 15
RTA_VIA = 18  # a gateway of another family (an IPv4 route via an IPv6 address, RFC 8950)

RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BLACKHOLE = 6
RTN_UNREACHABLE = 7
RTN_PROHIBIT = 8
RTN_NAMES = {
    RTN_UNICAST: "unicast",
    RTN_LOCAL: "local",
    3: "broadcast",
    4: "anycast",
    5: "multicast",
    RTN_BLACKHOLE: "blackhole",
    RTN_UNREACHABLE: "unreachable",
    RTN_PROHIBIT: "prohibit",
}

RTPROT_UNSPEC = 0
RTPROT_REDIRECT = 1
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_STATIC = 4
RTPROT_BIRD = 12
RTPROT_BGP = 186

RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RT_SCOPE_HOST = 254
RT_TABLE_COMPAT = 252
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTM_F_CLONED = 0x200
RTNH_F_ONLINK = 4  # a next hop's gateway is on the link, whatever the addresses say

IFLA_IFNAME = 3
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000

IFA_ADDRESS = 1
IFA_LOCAL = 2

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_RTA = struct.Struct("=HH")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_RTNH = struct.Struct("=HBBi")  # rtnexthop: len, flags, hops, ifindex
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


class NetlinkError(OSError):
    """A request the kernel answered with an error (``errno`` set), with its extended-ack text."""


# --- parsed messages --------------------------------------------------------------------------


class RouteMsg(NamedTuple):
    """One route as the kernel describes it. ``dst`` is the wire-format prefix (length octet
    and significant octets); ``nexthops`` is a tuple of ``(gateway bytes or None, ifindex)``,
    with a third item :data:`RTNH_F_ONLINK` for an ``onlink`` next hop."""

    family: int
    dst: bytes
    table: int
    protocol: int
    scope: int
    type: int
    metric: int
    nexthops: tuple
    flags: int = 0


class LinkMsg(NamedTuple):
    index: int
    name: str
    flags: int


class AddrMsg(NamedTuple):
    """An interface address: ``local`` our address, ``address`` the peer for point-to-point
    links (else equal to ``local``), ``prefixlen`` the length of the connected network."""

    family: int
    index: int
    prefixlen: int
    local: bytes
    address: bytes
    scope: int
    flags: int


# --- helpers ----------------------------------------------------------------------------------


def wire_prefix(addr: bytes, plen: int) -> bytes:
    """A full address and a length as the wire-format prefix (host bits cleared)."""
    n = (plen + 7) >> 3
    body = bytearray(addr[:n])
    if plen & 7:
        body[-1] &= (0xFF << (8 - (plen & 7))) & 0xFF
    return bytes((plen,)) + bytes(body)


def full_address(prefix: bytes, family: int) -> bytes:
    """The network address of a wire-format prefix, padded to the family's length."""
    return prefix[1:].ljust(ADDR_LEN[family], b"\x00")


def _rta(kind: int, value: bytes) -> bytes:
    n = 4 + len(value)
    pad = (-n) & 3
    return _RTA.pack(n, kind) + value + b"\x00" * pad


def iter_attrs(data, start: int, end: int):
    """``(type, value start, value end)`` for each rtattr in ``data[start:end]``."""
    unpack = _RTA.unpack_from
    while start + 4 <= end:
        n, kind = unpack(data, start)
        if n < 4:
            break
        yield kind & 0x3FFF, start + 4, start + n
        start += (n + 3) & ~3


def iter_messages(data):
    """``(type, flags, seq, pid, payload start, message end)`` for each message in a datagram."""
    unpack = _HDR.unpack_from
    pos = 0
    end = len(data)
    while pos + 16 <= end:
        n, typ, flags, seq, pid = unpack(data, pos)
        if n < 16 or pos + n > end:
            break
        yield typ, flags, seq, pid, pos + 16, pos + n
        pos += (n + 3) & ~3


def parse_error(data, start: int, end: int, flags: int) -> tuple[int, int, str]:
    """``(errno, seq of the failed request, extended-ack message)`` from an NLMSG_ERROR."""
    code = -_I32.unpack_from(data, start)[0]
    seq = _HDR.unpack_from(data, start + 4)[3] if start + 20 <= end else 0
    text = ""
    if flags & NLM_F_ACK_TLVS:
        off = start + 4 + 16
        if not flags & NLM_F_CAPPED:
            off = start + 4 + _HDR.unpack_from(data, start + 4)[0]
        for kind, a, b in iter_attrs(data, off, end):
            if kind == NLMSGERR_ATTR_MSG:
                text = bytes(data[a:b]).rstrip(b"\x00").decode(errors="replace")
    return code, seq, text


def parse_route(data, start: int, end: int, want_protocol: int = -1) -> RouteMsg | None:
    """A route message's payload as :class:`RouteMsg` (None when ``want_protocol`` is given and
    the route has another protocol: the attributes are then not decoded at all)."""
    fam, dlen, _slen, _tos, table, proto, scope, rtype, rflags = _RTMSG.unpack_from(data, start)
    if want_protocol >= 0 and proto != want_protocol:
        return None
    alen = ADDR_LEN.get(fam)
    if alen is None:
        return None
    dst = b""
    metric = 0
    gw = None
    oif = 0
    multi = ()
    u32 = _U32.unpack_from
    for kind, a, b in iter_attrs(data, start + 12, end):
        if kind == RTA_DST:
            dst = bytes(data[a:b])
        elif kind == RTA_TABLE:
            table = u32(data, a)[0]
        elif kind == RTA_PRIORITY:
            metric = u32(data, a)[0]
        elif kind == RTA_GATEWAY:
            gw = bytes(data[a:b])
        elif kind == RTA_VIA:
            gw = bytes(data[a + 2 : b])  # struct rtvia: family, then the address
        elif kind == RTA_OIF:
            oif = u32(data, a)[0]
        elif kind == RTA_MULTIPATH:
            multi = _parse_multipath(data, a, b)
    if rtype != RTN_UNICAST:
        hops = ()  # IPv6 reports blackholes "dev lo": not a next hop
    elif multi:
        hops = tuple(sorted(multi, key=hop_order))
    elif gw is not None or oif:
        hops = ((gw, oif, RTNH_F_ONLINK),) if rflags & RTNH_F_ONLINK else ((gw, oif),)
    else:
        hops = ()
    prefix = wire_prefix(dst.ljust(alen, b"\x00"), dlen) if dlen else b"\x00"
    return RouteMsg(fam, prefix, table, proto, scope, rtype, metric, hops, rflags)


def _parse_multipath(data, a: int, b: int) -> list:
    out = []
    while a + 8 <= b:
        n, flags, _hops, ifindex = _RTNH.unpack_from(data, a)
        if n < 8:
            break
        gw = None
        for kind, x, y in iter_attrs(data, a + 8, a + n):
            if kind == RTA_GATEWAY:
                gw = bytes(data[x:y])
            elif kind == RTA_VIA:
                gw = bytes(data[x + 2 : y])
        out.append((gw, ifindex, RTNH_F_ONLINK) if flags & RTNH_F_ONLINK else (gw, ifindex))
        a += (n + 3) & ~3
    return out


def parse_link(data, start: int, end: int) -> LinkMsg:
    _fam, _type, index, flags, _change = _IFINFO.unpack_from(data, start)
    name = ""
    for kind, a, b in iter_attrs(data, start + 16, end):
        if kind == IFLA_IFNAME:
            name = bytes(data[a:b]).rstrip(b"\x00").decode(errors="replace")
    return LinkMsg(index, name, flags)


def parse_addr(data, start: int, end: int) -> AddrMsg | None:
    fam, plen, flags, scope, index = _IFADDR.unpack_from(data, start)
    if fam not in ADDR_LEN:
        return None
    local = address = None
    for kind, a, b in iter_attrs(data, start + 8, end):
        if kind == IFA_LOCAL:
            local = bytes(data[a:b])
        elif kind == IFA_ADDRESS:
            address = bytes(data[a:b])
    if address is None:
        address = local
    if local is None:
        local = address
    if local is None:
        return None
    return AddrMsg(fam, index, plen, local, address, scope, flags)


# --- building requests ------------------------------------------------------------------------


def _gateway(family: int, gw: bytes) -> bytes:
    """RTA_GATEWAY, or RTA_VIA for a gateway of another family (IPv4 via IPv6)."""
    if family == AF_INET and len(gw) == 16:
        return _rta(RTA_VIA, struct.pack("=H", AF_INET6) + gw)
    return _rta(RTA_GATEWAY, gw)


def route_tail(
    op: int, family: int, rtype: int, nexthops: tuple, table: int, metric: int
) -> tuple[bytes, int, int]:
    """The attributes that follow RTA_DST in a route request, the route's scope and its
    rtm_flags (``onlink`` for a single onlink next hop; a multipath route carries the flag
    per next hop). Shared by every prefix with the same next hops: :class:`RouteSocket`
    caches them."""
    scope = RT_SCOPE_UNIVERSE
    rflags = 0
    body = [_rta(RTA_TABLE, _U32.pack(table)), _rta(RTA_PRIORITY, _U32.pack(metric))]
    if op == RTM_NEWROUTE and rtype == RTN_UNICAST:
        if len(nexthops) == 1:
            hop = nexthops[0]
            gw, ifindex = hop[0], hop[1]
            if gw is not None:
                body.append(_gateway(family, gw))
            else:
                scope = RT_SCOPE_LINK
            if ifindex:
                body.append(_rta(RTA_OIF, _U32.pack(ifindex)))
            if len(hop) > 2:
                rflags = hop[2]
        elif nexthops:
            hops = []
            for hop in nexthops:
                gw = hop[0]
                attr = _gateway(family, gw) if gw is not None else b""
                flags = hop[2] if len(hop) > 2 else 0
                hops.append(_RTNH.pack(8 + len(attr), flags, 0, hop[1]) + attr)
            body.append(_rta(RTA_MULTIPATH, b"".join(hops)))
    return b"".join(body), scope, rflags


# nlmsghdr + rtmsg + the RTA_DST header, in one pack
_ROUTE_HEAD = struct.Struct("=IHHIIBBBBBBBBIHH")


def encode_route(
    op: int,
    seq: int,
    flags: int,
    family: int,
    dst: bytes,
    table: int,
    protocol: int,
    rtype: int,
    metric: int,
    nexthops: tuple,
    tail: tuple[bytes, int] | None = None,
) -> bytes:
    """An RTM_NEWROUTE or RTM_DELROUTE request. A delete names dst, table, protocol, type and
    metric only, so it can never remove another program's route."""
    alen = ADDR_LEN[family]
    body, scope, rflags = tail or route_tail(op, family, rtype, nexthops, table, metric)
    return (
        _ROUTE_HEAD.pack(
            32 + alen + len(body),
            op,
            flags,
            seq,
            0,
            family,
            dst[0],
            0,
            0,
            table if table < 256 else RT_TABLE_COMPAT,
            protocol,
            scope,
            rtype,
            rflags,
            4 + alen,
            RTA_DST,
        )
        + dst[1:].ljust(alen, b"\x00")
        + body
    )


def dump_request(msg_type: int, seq: int, family: int = AF_UNSPEC, table: int = 0, protocol=0):
    """A dump request. With strict checking on (:data:`NETLINK_GET_STRICT_CHK`), a route dump
    is filtered by the kernel on ``table`` and ``protocol`` when they are not 0."""
    if msg_type == RTM_GETROUTE:
        payload = _RTMSG.pack(family, 0, 0, 0, table if table < 256 else 0, protocol, 0, 0, 0)
        if table:
            payload += _rta(RTA_TABLE, _U32.pack(table))
    elif msg_type == RTM_GETLINK:
        payload = _IFINFO.pack(family, 0, 0, 0, 0)
    else:
        payload = _IFADDR.pack(family, 0, 0, 0, 0)
    return _HDR.pack(16 + len(payload), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + payload


# --- sockets ----------------------------------------------------------------------------------


def _netns_path(netns: str) -> str:
    return netns if "/" in netns else f"/run/netns/{netns}"


def open_socket(netns: str | None = None) -> socket.socket:
    """A NETLINK_ROUTE socket, created in ``netns`` when given (see the module docstring)."""
    if netns is None:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    path = _netns_path(netns)
    out: dict = {}

    def enter_and_open() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({path}): {os.strerror(e)}")
            finally:
                os.close(fd)
            out["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    # The thread's namespace changes, never the caller's; the thread ends right after.
    t = threading.Thread(target=enter_and_open, name="bgpd-netns")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]


def _setopt(sock: socket.socket, level: int, opt: int, value: int) -> bool:
    try:
        sock.setsockopt(level, opt, value)
        return True
    except OSError:
        return False


def _set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    if not _setopt(sock, socket.SOL_SOCKET, force, size):
        _setopt(sock, socket.SOL_SOCKET, plain, size)


def _bpf_ignore_pid(pid: int) -> bytes:
    """A classic BPF program that drops every message whose nlmsg_pid is ``pid`` (the changes
    our own writer socket made) and accepts the rest. A multicast skb holds one message."""
    # BPF loads are big-endian; nlmsg_pid is in host order.
    want = int.from_bytes(_U32.pack(pid), "big")
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    insns = [
        (ld_w_abs, 0, 0, 12),  # A = nlmsg_pid
        (jeq_k, 0, 1, want),  # if A == pid: next (drop) else skip one (accept)
        (ret_k, 0, 0, 0),
        (ret_k, 0, 0, 0xFFFFFFFF),
    ]
    return b"".join(struct.pack("=HBBI", *i) for i in insns)


def attach_filter(sock: socket.socket, program: bytes) -> None:
    buf = ctypes.create_string_buffer(program)
    fprog = struct.pack("@HP", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class NetlinkSocket:
    """A non-blocking NETLINK_ROUTE socket: requests with their answers, dumps, multicast."""

    def __init__(
        self,
        netns: str | None = None,
        groups: int = 0,
        rcvbuf: int = 8 << 20,
        sndbuf: int = 4 << 20,
    ) -> None:
        sock = open_socket(netns)
        try:
            _set_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
            _set_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
            _setopt(sock, SOL_NETLINK, NETLINK_CAP_ACK, 1)
            _setopt(sock, SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.strict = _setopt(sock, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            sock.bind((0, groups))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.pid = sock.getsockname()[0]
        self.netns = netns
        self._seq = 0
        self.recv_size = 1 << 16  # a dump datagram is at most 32 KiB

    def fileno(self) -> int:
        return self.sock.fileno()

    def next_seq(self, n: int = 1) -> int:
        """Reserve ``n`` sequence numbers; returns the first."""
        first = self._seq + 1
        self._seq += n
        if self._seq > 0x7FFFFFFF:
            self._seq = n
            first = 1
        return first

    def ignore_pid(self, pid: int) -> None:
        """Drop multicast messages caused by the socket with port id ``pid`` (ours)."""
        attach_filter(self.sock, _bpf_ignore_pid(pid))

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def recv_nowait(self) -> bytes | None:
        """One datagram, or None when nothing is queued. Raises OSError(ENOBUFS) after an
        overrun: messages were lost."""
        try:
            return self.sock.recv(self.recv_size)
        except (BlockingIOError, InterruptedError):
            return None

    async def recv(self, timeout: float | None = None) -> bytes:
        data = self.recv_nowait()
        if data is not None:
            return data
        loop = asyncio.get_running_loop()
        coro = loop.sock_recv(self.sock, self.recv_size)
        if timeout is None:
            return await coro
        return await asyncio.wait_for(coro, timeout)

    async def dump(
        self,
        msg_type: int,
        family: int = AF_UNSPEC,
        table: int = 0,
        protocol: int = 0,
        timeout: float = 30.0,
    ) -> list[tuple]:
        """Dump links, addresses or routes: ``[(type, data, payload start, end)]``.

        Yields to the event loop every few datagrams so that a large table never stalls it.
        Raises :class:`NetlinkError` when the kernel refuses the request.
        """
        seq = self.next_seq()
        self.send(dump_request(msg_type, seq, family, table, protocol if self.strict else 0))
        out = []
        chunks = 0
        while True:
            data = await self.recv(timeout)
            chunks += 1
            if chunks % 8 == 0:
                await asyncio.sleep(0)
            for typ, flags, mseq, _pid, a, b in iter_messages(data):
                if mseq != seq:
                    continue
                if typ == NLMSG_DONE:
                    return out
                if typ == NLMSG_ERROR:
                    code, _s, text = parse_error(data, a, b, flags)
                    if code == 0:
                        continue
                    raise NetlinkError(code, text or os.strerror(code))
                out.append((typ, data, a, b))

    def close(self) -> None:
        self.sock.close()


class RouteSocket:
    """The FIB writer's channel to the kernel: batches of route requests and dumps of our
    routes. :class:`~bgpd.kernel.fib.FibWriter` talks to nothing else, so that tests can give
    it an in-memory kernel instead (tests/kernel/fake.py)."""

    def __init__(self, netns: str | None = None) -> None:
        self.nl = NetlinkSocket(netns, rcvbuf=16 << 20, sndbuf=8 << 20)
        self.pid = self.nl.pid
        self._tails: dict = {}  # (op, family, type, next hops, table, metric) -> route_tail()

    def apply(self, requests: list[tuple]) -> list[tuple[int, int, str]]:
        """Send ``[(op, KernelRoute), ...]`` in one datagram; ``[(index, errno, text)]`` of
        the requests that failed. Only the last request asks for an ACK: rtnetlink handles a
        datagram synchronously, so every error and that ACK are queued when ``send`` returns.

        Raises OSError(ENOBUFS) when answers were lost (the caller resyncs)."""
        if not requests:
            return []
        n = len(requests)
        first = self.nl.next_seq(n)
        parts = []
        tails = self._tails
        if len(tails) > 4096:
            tails.clear()
        pack = _ROUTE_HEAD.pack
        new_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE
        seq = first
        for op, r in requests:
            key = (op, r.family, r.type, r.nexthops, r.table, r.metric)
            t = tails.get(key)
            if t is None:
                t = tails[key] = route_tail(op, r.family, r.type, r.nexthops, r.table, r.metric)
            body, scope, rflags = t
            alen = 4 if r.family == AF_INET else 16
            table = r.table
            dst = r.dst
            parts.append(
                pack(
                    32 + alen + len(body),
                    op,
                    new_flags if op == RTM_NEWROUTE else NLM_F_REQUEST,
                    seq,
                    0,
                    r.family,
                    dst[0],
                    0,
                    0,
                    table if table < 256 else RT_TABLE_COMPAT,
                    r.protocol,
                    scope,
                    r.type,
                    rflags,
                    4 + alen,
                    RTA_DST,
                )
            )
            parts.append(dst[1:].ljust(alen, b"\x00"))
            parts.append(body)
            seq += 1
        # the last request asks for an ACK: set NLM_F_ACK in its header (flags at offset 6)
        last = n - 1
        head = bytearray(parts[-3])
        struct.pack_into("=H", head, 6, struct.unpack_from("=H", head, 6)[0] | NLM_F_ACK)
        parts[-3] = bytes(head)
        self.nl.send(b"".join(parts))
        failed = []
        last_seq = first + last
        done = False
        while not done:
            data = self.nl.recv_nowait()
            if data is None:
                # Not seen in practice (rtnetlink answers synchronously); treat as lost.
                raise OSError(errno.ENOBUFS, "netlink answers missing")
            for typ, flags, _seq, _pid, a, b in iter_messages(data):
                if typ != NLMSG_ERROR:
                    continue
                code, rseq, text = parse_error(data, a, b, flags)
                if code:
                    failed.append((rseq - first, code, text))
                if rseq == last_seq:
                    done = True
        return failed

    async def dump_routes(self, table: int, protocol: int) -> list[RouteMsg]:
        """Our routes: those of ``protocol`` in ``table``, both families."""
        out = []
        for _typ, data, a, b in await self.nl.dump(RTM_GETROUTE, AF_UNSPEC, table, protocol):
            r = parse_route(data, a, b, protocol)
            if r is not None and r.table == table and not r.flags & RTM_F_CLONED:
                out.append(r)
        return out

    def close(self) -> None:
        self.nl.close()


def available() -> str | None:
    """None when netlink route sockets work here, else why not."""
    if not sys.platform.startswith("linux"):
        return "netlink needs Linux"
    try:
        s = open_socket()
    except OSError as e:
        return f"cannot open a netlink socket: {e}"
    s.close()
    return None

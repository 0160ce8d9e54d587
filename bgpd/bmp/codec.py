"""BMP messages (RFC 7854, RFC 9069 Loc-RIB, RFC 8671 Adj-RIB-Out): bytes only, time passed in.

Every message starts with the common header (version 3, 4-octet length of the whole message,
type). Messages about a peer carry the 42-octet per-peer header: peer type, flags, peer
distinguisher, peer address (16 octets, an IPv4 address in the last 4), peer AS, peer BGP ID
and a seconds/microseconds timestamp. The fixed part of the per-peer header is encoded once
per (peer, flags) by :class:`PeerHeader`; only the timestamp is packed per message.
"""

import ipaddress
import struct

from bgpd.wire.constants import HEADER_LEN, MARKER, UPDATE

VERSION = 3

# Message types (RFC 7854 §4.1)
ROUTE_MONITORING = 0
STATISTICS_REPORT = 1
PEER_DOWN = 2
PEER_UP = 3
INITIATION = 4
TERMINATION = 5
ROUTE_MIRRORING = 6

# Peer types (RFC 7854 §4.2, RFC 9069 §4.1)
GLOBAL_INSTANCE = 0
RD_INSTANCE = 1
LOCAL_INSTANCE = 2
LOC_RIB_INSTANCE = 3

# Peer flags, peer types 0-2 (RFC 7854 §4.2, RFC 8671 §4)
FLAG_V = 0x80  # the peer address is IPv6
FLAG_L = 0x40  # post-policy
FLAG_A = 0x20  # legacy 2-octet AS_PATH
FLAG_O = 0x10  # Adj-RIB-Out
# Peer flags, Loc-RIB instance (RFC 9069 §4.2)
FLAG_F = 0x80  # the Loc-RIB is filtered

# Information TLVs of Initiation and Peer Up (RFC 7854 §4.4, RFC 9069 §5.4)
INFO_STRING = 0
INFO_SYS_DESCR = 1
INFO_SYS_NAME = 2
INFO_TABLE_NAME = 3

# Termination TLVs and reasons (RFC 7854 §4.5)
TERM_STRING = 0
TERM_REASON = 1
TERM_ADMIN_CLOSED = 0
TERM_UNSPECIFIED = 1
TERM_OUT_OF_RESOURCES = 2
TERM_REDUNDANT = 3
TERM_PERMANENTLY_CLOSED = 4

# Peer Down reasons (RFC 7854 §4.9, RFC 9069 §5.5)
DOWN_LOCAL_NOTIFICATION = 1
DOWN_LOCAL_NO_NOTIFICATION = 2  # 2-octet FSM event code follows
DOWN_REMOTE_NOTIFICATION = 3
DOWN_REMOTE_NO_DATA = 4
DOWN_DECONFIGURED = 5
DOWN_LOCAL_TLV = 6  # Loc-RIB: TLVs follow

# Statistics types (RFC 7854 §4.8, RFC 8671 §5): name -> (type, kind)
# kind: "c32" 32-bit counter, "g64" 64-bit gauge, "af64" per-AFI/SAFI 64-bit gauge
STATS = {
    "rejected": (0, "c32"),
    "duplicate_prefixes": (1, "c32"),
    "duplicate_withdraws": (2, "c32"),
    "cluster_list_loops": (3, "c32"),
    "as_path_loops": (4, "c32"),
    "originator_id_loops": (5, "c32"),
    "as_confed_loops": (6, "c32"),
    "adj_rib_in": (7, "g64"),
    "loc_rib": (8, "g64"),
    "adj_rib_in_family": (9, "af64"),
    "loc_rib_family": (10, "af64"),
    "treat_as_withdraw_updates": (11, "c32"),
    "treat_as_withdraw_prefixes": (12, "c32"),
    "duplicate_updates": (13, "c32"),
    "adj_rib_out_pre": (14, "g64"),
    "adj_rib_out_post": (15, "g64"),
    "adj_rib_out_pre_family": (16, "af64"),
    "adj_rib_out_post_family": (17, "af64"),
}

COMMON_LEN = 6
PER_PEER_LEN = 42
_COMMON = struct.Struct(">BIB")
_TS = struct.Struct(">II")


def common_header(msg_type: int, total_len: int) -> bytes:
    return _COMMON.pack(VERSION, total_len, msg_type)


def message(msg_type: int, body: bytes) -> bytes:
    return _COMMON.pack(VERSION, COMMON_LEN + len(body), msg_type) + body


def tlv(tlv_type: int, value: bytes) -> bytes:
    return struct.pack(">HH", tlv_type, len(value)) + value


def _ts(now: float) -> bytes:
    sec = int(now)
    usec = round((now - sec) * 1_000_000)
    return _TS.pack(sec, min(usec, 999_999))


def addr16(address) -> tuple[bytes, bool]:
    """``(16 octets, is_ipv6)``: an IPv4 address is carried in the last four octets."""
    if address is None:
        return bytes(16), False
    if isinstance(address, bytes | bytearray):
        raw = bytes(address)
    else:
        raw = ipaddress.ip_address(str(address).split("%", 1)[0]).packed
    if len(raw) == 4:
        return bytes(12) + raw, False
    return raw, True


def _id4(router_id) -> bytes:
    if isinstance(router_id, bytes | bytearray):
        return bytes(router_id)
    return ipaddress.IPv4Address(router_id or "0.0.0.0").packed


class PeerHeader:
    """The per-peer header of one monitored peer, the fixed part encoded once per flags value.

    ``flags`` for the address family and the AS size are derived (V from the address, A when
    ``as4`` is false); the message-kind flags (L post-policy, O Adj-RIB-Out, F filtered
    Loc-RIB) are passed per message.
    """

    __slots__ = ("peer_type", "base_flags", "_prefix", "_rest", "_cache")

    def __init__(
        self,
        peer_type: int,
        address,
        asn: int,
        router_id,
        *,
        as4: bool = True,
        distinguisher: bytes = bytes(8),
    ) -> None:
        raw, v6 = addr16(address)
        self.peer_type = peer_type
        if peer_type == LOC_RIB_INSTANCE:
            self.base_flags = 0
        else:
            self.base_flags = (FLAG_V if v6 else 0) | (0 if as4 else FLAG_A)
        if len(distinguisher) != 8:
            raise ValueError("a peer distinguisher is 8 octets")
        self._rest = distinguisher + raw + struct.pack(">I", asn) + _id4(router_id)
        self._cache: dict[int, bytes] = {}

    def fixed(self, flags: int = 0) -> bytes:
        f = self.base_flags | flags
        b = self._cache.get(f)
        if b is None:
            b = self._cache[f] = bytes((self.peer_type, f)) + self._rest
        return b

    def encode(self, now: float, flags: int = 0) -> bytes:
        return self.fixed(flags) + _ts(now)


# --- the messages -----------------------------------------------------------------------------


def initiation(sys_name: str, sys_descr: str, strings=()) -> bytes:
    """Initiation (RFC 7854 §4.3): sysDescr and sysName are mandatory."""
    body = tlv(INFO_SYS_DESCR, sys_descr.encode()) + tlv(INFO_SYS_NAME, sys_name.encode())
    for s in strings:
        body += tlv(INFO_STRING, s.encode())
    return message(INITIATION, body)


def termination(reason: int = TERM_ADMIN_CLOSED, text: str | None = None) -> bytes:
    """Termination (RFC 7854 §4.5): a reason code and an optional string."""
    body = tlv(TERM_REASON, struct.pack(">H", reason))
    if text:
        body = tlv(TERM_STRING, text.encode()) + body
    return message(TERMINATION, body)


def _bgp(raw: bytes, msg_type: int) -> bytes:
    """A full BGP message from a body or a full message."""
    if raw[:16] == MARKER:
        return bytes(raw)
    return MARKER + (HEADER_LEN + len(raw)).to_bytes(2, "big") + bytes((msg_type,)) + raw


def peer_up(
    hdr: PeerHeader,
    now: float,
    local_address,
    local_port: int,
    remote_port: int,
    sent_open: bytes,
    received_open: bytes,
    info=(),
    flags: int = 0,
) -> bytes:
    """Peer Up Notification (RFC 7854 §4.10): the two OPENs as they crossed the wire.

    ``info`` are ``(type, text)`` Information TLVs (a Loc-RIB peer gives its table name,
    RFC 9069 §5.4). ``sent_open``/``received_open`` are full OPEN messages or their bodies.
    """
    local, _ = addr16(local_address)
    body = (
        hdr.encode(now, flags)
        + local
        + struct.pack(">HH", local_port, remote_port)
        + _bgp(sent_open, 1)
        + _bgp(received_open, 1)
    )
    for t, text in info:
        body += tlv(t, text.encode() if isinstance(text, str) else text)
    return message(PEER_UP, body)


def peer_down(hdr: PeerHeader, now: float, reason: int, data: bytes = b"", flags: int = 0) -> bytes:
    """Peer Down Notification (RFC 7854 §4.9): the reason and its data (a NOTIFICATION, a
    2-octet FSM event code, nothing, or TLVs for a Loc-RIB peer)."""
    return message(PEER_DOWN, hdr.encode(now, flags) + bytes((reason,)) + data)


def route_monitoring(hdr: PeerHeader, now: float, update: bytes, flags: int = 0) -> bytes:
    """Route Monitoring (RFC 7854 §4.6): the per-peer header and one full UPDATE message."""
    if update[:16] != MARKER:
        update = _bgp(update, UPDATE)
    fixed = hdr.fixed(flags)
    return (
        _COMMON.pack(VERSION, COMMON_LEN + PER_PEER_LEN + len(update), ROUTE_MONITORING)
        + fixed
        + _ts(now)
        + update
    )


def route_monitoring_many(hdr: PeerHeader, now: float, updates, flags: int = 0) -> bytes:
    """Several Route Monitoring messages of one peer, joined (one timestamp, one lookup)."""
    head = hdr.fixed(flags) + _ts(now)
    pack = _COMMON.pack
    n = COMMON_LEN + PER_PEER_LEN
    return b"".join([pack(VERSION, n + len(u), ROUTE_MONITORING) + head + u for u in updates])


def stat_tlv(name: str, value) -> bytes:
    """One statistic: ``value`` is an int, or ``{(afi, safi): int}`` for the per-family ones
    (one TLV per family)."""
    code, kind = STATS[name]
    if kind == "c32":
        return tlv(code, struct.pack(">I", value & 0xFFFFFFFF))
    if kind == "g64":
        return tlv(code, struct.pack(">Q", value))
    return b"".join(
        tlv(code, struct.pack(">HBQ", afi, safi, n)) for (afi, safi), n in sorted(value.items())
    )


def statistics_report(hdr: PeerHeader, now: float, stats: dict, flags: int = 0) -> bytes:
    """Statistics Report (RFC 7854 §4.8) from ``{name: value}`` (names in :data:`STATS`)."""
    tlvs = []
    for name, value in stats.items():
        if name not in STATS:
            raise ValueError(f"unknown BMP statistic {name!r}")
        t = stat_tlv(name, value)
        if STATS[name][1] == "af64":
            tlvs.extend(_split_tlvs(t))
        else:
            tlvs.append(t)
    body = hdr.encode(now, flags) + struct.pack(">I", len(tlvs)) + b"".join(tlvs)
    return message(STATISTICS_REPORT, body)


def _split_tlvs(data: bytes) -> list[bytes]:
    out = []
    i = 0
    while i < len(data):
        n = 4 + struct.unpack_from(">H", data, i + 2)[0]
        out.append(data[i : i + n])
        i += n
    return out


def fsm_event_code(event) -> int:
    """The RFC 4271 §8.1 event number for a peer down without NOTIFICATION (0: unknown)."""
    if isinstance(event, int):
        return event
    return FSM_EVENTS.get(str(event), 0)


# RFC 4271 §8.1 event numbers, by the names bgpd uses for local closes.
FSM_EVENTS = {
    "ManualStop": 2,
    "AutomaticStop": 8,
    "HoldTimer_Expires": 10,
    "TcpConnectionFails": 18,
}


def split(stream: bytes) -> list[bytes]:
    """Cut concatenated BMP messages apart (tests; a collector's job)."""
    out = []
    i = 0
    while i + COMMON_LEN <= len(stream):
        n = struct.unpack_from(">I", stream, i + 1)[0]
        out.append(stream[i : i + n])
        i += n
    return out


__all__ = [
    "FLAG_A",
    "FLAG_F",
    "FLAG_L",
    "FLAG_O",
    "FLAG_V",
    "GLOBAL_INSTANCE",
    "LOC_RIB_INSTANCE",
    "STATS",
    "PeerHeader",
    "addr16",
    "initiation",
    "message",
    "peer_down",
    "peer_up",
    "route_monitoring",
    "route_monitoring_many",
    "split",
    "statistics_report",
    "termination",
]

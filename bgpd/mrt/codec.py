"""MRT records (RFC 6396, RFC 8050): bytes only, no I/O, no clock (times are passed in).

Two record families are written:

* ``BGP4MP_ET`` (type 17): every BGP message of a session as it crossed the wire, with a
  microsecond timestamp. ``BGP4MP_MESSAGE_AS4`` (subtype 4) for received messages,
  ``BGP4MP_MESSAGE_AS4_LOCAL`` (7) for sent ones, their ``_ADDPATH`` twins (9, 11; RFC 8050)
  when the UPDATE's NLRI carry path identifiers, and ``BGP4MP_STATE_CHANGE_AS4`` (5).
  An UPDATE of a session without four-octet AS numbers carries two-octet AS_PATHs: its record
  uses the two-octet subtypes (``BGP4MP_MESSAGE`` 1, ``_LOCAL`` 6, ``_ADDPATH`` 8, 10), since
  readers take the AS number size of the enclosed AS_PATH from the subtype.
* ``TABLE_DUMP_V2`` (type 13): a ``PEER_INDEX_TABLE`` followed by one ``RIB_IPV4_UNICAST`` /
  ``RIB_IPV6_UNICAST`` record per prefix, or ``RIB_*_ADDPATH`` (RFC 8050) for entries that
  carry a path identifier. Attributes in RIB entries always use four-octet AS numbers and an
  abbreviated MP_REACH_NLRI (next hop length and next hop only, RFC 6396 §4.3.4).

In the ``_LOCAL`` subtypes the Local fields name this speaker and the Peer fields the
neighbor the message went to, exactly as in the received subtypes.
"""

import ipaddress
import struct

from bgpd.wire.attrs import AttrSet, encode_attrs
from bgpd.wire.constants import (
    AFI_IPV4,
    AFI_IPV6,
    AS_TRANS,
    ATTR_MP_REACH_NLRI,
    ATTR_MP_UNREACH_NLRI,
    FLAG_EXTENDED,
    FLAG_OPTIONAL,
    HEADER_LEN,
    IPV4_UNICAST,
    IPV6_UNICAST,
    UPDATE,
)

# --- type and subtype codes (RFC 6396 §4, RFC 8050 §3-4) ---------------------------------------

TABLE_DUMP_V2 = 13
BGP4MP = 16
BGP4MP_ET = 17

PEER_INDEX_TABLE = 1
RIB_IPV4_UNICAST = 2
RIB_IPV4_MULTICAST = 3
RIB_IPV6_UNICAST = 4
RIB_IPV6_MULTICAST = 5
RIB_GENERIC = 6
RIB_IPV4_UNICAST_ADDPATH = 8
RIB_IPV6_UNICAST_ADDPATH = 10

BGP4MP_STATE_CHANGE = 0
BGP4MP_MESSAGE = 1
BGP4MP_MESSAGE_AS4 = 4
BGP4MP_STATE_CHANGE_AS4 = 5
BGP4MP_MESSAGE_LOCAL = 6
BGP4MP_MESSAGE_AS4_LOCAL = 7
BGP4MP_MESSAGE_ADDPATH = 8
BGP4MP_MESSAGE_AS4_ADDPATH = 9
BGP4MP_MESSAGE_LOCAL_ADDPATH = 10
BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH = 11

# (as4, sent, addpath) -> BGP4MP subtype: the table of RFC 6396 §4.4 and RFC 8050 §4.
MESSAGE_SUBTYPE = {
    (True, False, False): BGP4MP_MESSAGE_AS4,
    (True, True, False): BGP4MP_MESSAGE_AS4_LOCAL,
    (True, False, True): BGP4MP_MESSAGE_AS4_ADDPATH,
    (True, True, True): BGP4MP_MESSAGE_AS4_LOCAL_ADDPATH,
    (False, False, False): BGP4MP_MESSAGE,
    (False, True, False): BGP4MP_MESSAGE_LOCAL,
    (False, False, True): BGP4MP_MESSAGE_ADDPATH,
    (False, True, True): BGP4MP_MESSAGE_LOCAL_ADDPATH,
}

# RIB subtype per (family, with path ids).
RIB_SUBTYPE = {
    (IPV4_UNICAST, False): RIB_IPV4_UNICAST,
    (IPV6_UNICAST, False): RIB_IPV6_UNICAST,
    (IPV4_UNICAST, True): RIB_IPV4_UNICAST_ADDPATH,
    (IPV6_UNICAST, True): RIB_IPV6_UNICAST_ADDPATH,
}

# BGP FSM states as MRT numbers them (RFC 6396 §4.4.1).
STATES = {
    "Idle": 1,
    "Connect": 2,
    "Active": 3,
    "OpenSent": 4,
    "OpenConfirm": 5,
    "Established": 6,
}

_HDR = struct.Struct(">IHHI")  # timestamp, type, subtype, length
_HDR_ET = struct.Struct(">IHHII")  # ... plus the microsecond timestamp (counted in length)


def header(now: float, mrt_type: int, subtype: int, length: int) -> bytes:
    """The 12-octet MRT common header (RFC 6396 §2) for a body of ``length`` octets."""
    return _HDR.pack(int(now), mrt_type, subtype, length)


def header_et(now: float, mrt_type: int, subtype: int, length: int) -> bytes:
    """The extended-timestamp header (RFC 6396 §3): the length counts the microseconds."""
    sec = int(now)
    usec = round((now - sec) * 1_000_000)
    if usec > 999_999:
        usec = 999_999
    return _HDR_ET.pack(sec, mrt_type, subtype, length + 4, usec)


def record(now: float, mrt_type: int, subtype: int, body: bytes) -> bytes:
    return header(now, mrt_type, subtype, len(body)) + body


def _ip(text_or_bytes) -> bytes:
    if isinstance(text_or_bytes, bytes | bytearray):
        return bytes(text_or_bytes)
    ip = ipaddress.ip_address(str(text_or_bytes).split("%", 1)[0])
    return ip.packed


def _asn2(asn: int) -> int:
    return asn if asn <= 0xFFFF else AS_TRANS


# --- BGP4MP -----------------------------------------------------------------------------------


class MrtPeer:
    """One BGP session as BGP4MP records name it.

    ``address``/``local_address`` are the two ends of the TCP connection (both IPv4 or both
    IPv6; text or packed). ``as4`` says whether UPDATEs carry four-octet AS_PATHs (RFC 6793
    negotiated); ``add_path_rx``/``add_path_tx`` are the families whose received/sent NLRI
    carry path identifiers (the negotiated ``Context`` fields). The fixed part of each record
    is encoded once and kept here.
    """

    __slots__ = (
        "asn",
        "local_as",
        "address",
        "local_address",
        "as4",
        "add_path_rx",
        "add_path_tx",
        "ifindex",
        "_fixed",
        "_mixed",
    )

    def __init__(
        self,
        asn: int,
        local_as: int,
        address,
        local_address,
        *,
        as4: bool = True,
        add_path_rx: frozenset = frozenset(),
        add_path_tx: frozenset = frozenset(),
        ifindex: int = 0,
    ) -> None:
        self.asn = asn
        self.local_as = local_as
        peer_ip = _ip(address)
        local_ip = _ip(local_address) if local_address is not None else bytes(len(peer_ip))
        if len(peer_ip) != len(local_ip):
            # An IPv4 session seen through an IPv6 socket: compare as IPv6 (RFC 6396 has one AFI).
            peer_ip = _v6(peer_ip)
            local_ip = _v6(local_ip)
        self.address = peer_ip
        self.local_address = local_ip
        self.as4 = as4
        self.add_path_rx = frozenset(add_path_rx)
        self.add_path_tx = frozenset(add_path_tx)
        self.ifindex = ifindex
        afi = AFI_IPV4 if len(peer_ip) == 4 else AFI_IPV6
        tail = struct.pack(">HH", ifindex, afi) + peer_ip + local_ip
        # 4-octet and 2-octet AS fields (BGP4MP_*_AS4 vs BGP4MP_MESSAGE/_LOCAL)
        self._fixed = (
            struct.pack(">II", asn, local_as) + tail,
            struct.pack(">HH", _asn2(asn), _asn2(local_as)) + tail,
        )
        # Whether path ids depend on the family in a direction (only then is an UPDATE looked at)
        fams = (IPV4_UNICAST, IPV6_UNICAST)
        self._mixed = (
            0 < len(self.add_path_rx & set(fams)) < len(fams),
            0 < len(self.add_path_tx & set(fams)) < len(fams),
        )

    @classmethod
    def from_negotiated(cls, neg, address, local_address, local_as: int) -> "MrtPeer":
        """Build from a :class:`bgpd.fsm.Negotiated` (read by attribute, not imported)."""
        ctx = neg.context
        return cls(
            neg.peer_asn,
            local_as,
            address,
            local_address,
            as4=ctx.as4,
            add_path_rx=ctx.add_path_rx,
            add_path_tx=ctx.add_path_tx,
        )

    def message(self, raw: bytes, now: float, sent: bool = False) -> bytes:
        """One BGP4MP_ET record for the full BGP message ``raw`` (header included)."""
        is_update = len(raw) > HEADER_LEN and raw[18] == UPDATE
        as4 = self.as4 or not is_update
        addpath = False
        if is_update:
            fams = self.add_path_tx if sent else self.add_path_rx
            if fams:
                if self._mixed[sent]:
                    addpath = update_family(raw) in fams
                else:
                    addpath = True
        subtype = MESSAGE_SUBTYPE[(as4, sent, addpath)]
        fixed = self._fixed[0 if as4 else 1]
        return header_et(now, BGP4MP_ET, subtype, len(fixed) + len(raw)) + fixed + raw

    def state_change(self, old, new, now: float) -> bytes:
        """A BGP4MP_STATE_CHANGE_AS4 record; states as MRT numbers or RFC 4271 names."""
        body = self._fixed[0] + struct.pack(">HH", _state(old), _state(new))
        return header_et(now, BGP4MP_ET, BGP4MP_STATE_CHANGE_AS4, len(body)) + body


def _v6(ip: bytes) -> bytes:
    return ip if len(ip) == 16 else b"\x00" * 10 + b"\xff\xff" + ip


def _state(s) -> int:
    if isinstance(s, int):
        return s
    return STATES[str(s)]


def update_family(raw: bytes):
    """The family of an UPDATE's NLRI: the MP attribute's, else IPv4 unicast (also for a
    malformed UPDATE: the log records what arrived, whatever it is)."""
    try:
        return _update_family(raw)
    except IndexError:
        return IPV4_UNICAST


def _update_family(raw: bytes):
    body_start = HEADER_LEN
    wlen = (raw[body_start] << 8) | raw[body_start + 1]
    a = body_start + 2 + wlen
    alen = (raw[a] << 8) | raw[a + 1]
    i = a + 2
    end = i + alen
    while i + 3 <= end:
        flags, code = raw[i], raw[i + 1]
        if flags & FLAG_EXTENDED:
            vlen = (raw[i + 2] << 8) | raw[i + 3]
            vs = i + 4
        else:
            vlen = raw[i + 2]
            vs = i + 3
        if code in (ATTR_MP_REACH_NLRI, ATTR_MP_UNREACH_NLRI) and vs + 3 <= end:
            return ((raw[vs] << 8) | raw[vs + 1], raw[vs + 2])
        i = vs + vlen
    return IPV4_UNICAST


# --- TABLE_DUMP_V2 ----------------------------------------------------------------------------


def peer_index_table(collector_id, view_name: str, peers, now: float) -> bytes:
    """The PEER_INDEX_TABLE record (RFC 6396 §4.3.1).

    ``peers`` is a sequence of ``(bgp_id, address, asn)``: the BGP identifier (text or 4
    octets), the peer's address (IPv4 or IPv6) and AS. A peer type of IPv6 and/or four-octet
    AS is chosen per entry.
    """
    name = view_name.encode("utf-8")
    out = [_ip(collector_id), struct.pack(">H", len(name)), name, struct.pack(">H", len(peers))]
    for bgp_id, address, asn in peers:
        ip = _ip(address) if address is not None else bytes(4)
        ptype = (1 if len(ip) == 16 else 0) | (2 if asn > 0xFFFF else 0)
        out.append(bytes((ptype,)) + _ip(bgp_id) + ip)
        out.append(asn.to_bytes(4 if asn > 0xFFFF else 2, "big"))
    return record(now, TABLE_DUMP_V2, PEER_INDEX_TABLE, b"".join(out))


def rib_attrs(attrs: AttrSet, family) -> bytes:
    """The attributes of a RIB entry: four-octet AS_PATH, NEXT_HOP for an IPv4 next hop of an
    IPv4 route, otherwise the abbreviated MP_REACH_NLRI (RFC 6396 §4.3.4). Cached on the set."""
    nh = attrs.next_hop
    mp = family != IPV4_UNICAST or (nh is not None and len(nh) != 4)
    key = ("mrt-rib", mp)
    cached = attrs.cache.get(key)
    if cached is not None:
        return cached
    block = encode_attrs(attrs, True, with_next_hop=not mp)
    if mp:
        value = bytes((len(nh or b""),)) + (nh or b"")
        block = bytes((FLAG_OPTIONAL, ATTR_MP_REACH_NLRI, len(value))) + value + block
    attrs.cache[key] = block
    return block


_ENTRY = struct.Struct(">HIH")  # peer index, originated time, attribute length
_ENTRY_AP = struct.Struct(">HIIH")  # ... with the path identifier (RFC 8050 §4)


def rib_entry(
    peer: int, originated: float, path_id, attrs: AttrSet, family, addpath: bool
) -> bytes:
    """One RIB entry (RFC 6396 §4.3.4; RFC 8050 §4 puts the path id before the length)."""
    block = rib_attrs(attrs, family)
    if addpath:
        return _ENTRY_AP.pack(peer, int(originated), path_id or 0, len(block)) + block
    return _ENTRY.pack(peer, int(originated), len(block)) + block


def rib_record_raw(seq: int, family, prefix: bytes, count: int, entries: bytes, now, addpath):
    """A RIB record from ``count`` entries already encoded by :func:`rib_entry`."""
    body_len = 4 + len(prefix) + 2 + len(entries)
    return (
        header(now, TABLE_DUMP_V2, RIB_SUBTYPE[(family, addpath)], body_len)
        + _SEQ_COUNT_HEAD.pack(seq & 0xFFFFFFFF)
        + prefix
        + count.to_bytes(2, "big")
        + entries
    )


_SEQ_COUNT_HEAD = struct.Struct(">I")


def rib_record(seq: int, family, prefix: bytes, entries, now: float, addpath: bool) -> bytes:
    """One RIB_IPV4/IPV6_UNICAST[_ADDPATH] record (RFC 6396 §4.3.2, RFC 8050 §4).

    ``prefix`` is bgpd's prefix key (length octet + significant octets: exactly the record's
    Prefix Length and Prefix fields). ``entries`` are ``(peer_index, originated, path_id,
    attrs)`` with ``path_id`` ignored unless ``addpath``.
    """
    parts = [struct.pack(">I", seq & 0xFFFFFFFF), prefix, struct.pack(">H", len(entries))]
    append = parts.append
    if addpath:
        pack = _ENTRY_AP.pack
        for peer, originated, path_id, attrs in entries:
            block = rib_attrs(attrs, family)
            append(pack(peer, int(originated), path_id or 0, len(block)))
            append(block)
    else:
        pack = _ENTRY.pack
        for peer, originated, _path_id, attrs in entries:
            block = rib_attrs(attrs, family)
            append(pack(peer, int(originated), len(block)))
            append(block)
    body = b"".join(parts)
    return record(now, TABLE_DUMP_V2, RIB_SUBTYPE[(family, addpath)], body)


__all__ = [
    "BGP4MP",
    "BGP4MP_ET",
    "MESSAGE_SUBTYPE",
    "RIB_SUBTYPE",
    "STATES",
    "TABLE_DUMP_V2",
    "MrtPeer",
    "header",
    "header_et",
    "peer_index_table",
    "record",
    "rib_attrs",
    "rib_entry",
    "rib_record",
    "rib_record_raw",
    "update_family",
]

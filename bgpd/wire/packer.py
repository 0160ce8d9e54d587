"""Packing many prefixes that share one attribute set into as few UPDATEs as fit.

Work is per attribute set: the attribute block is encoded once (cached on the set) and the
prefixes' wire bytes are joined. RFC 7606 §5.1: MP_REACH_NLRI / MP_UNREACH_NLRI go first.
"""

from .attrs import _ENC_KEYS, OPT, AttrSet, encode_attrs
from .constants import (
    ATTR_MP_REACH_NLRI,
    ATTR_MP_UNREACH_NLRI,
    FLAG_EXTENDED,
    HEADER_LEN,
    IPV4_UNICAST,
    MARKER,
    MAX_EXTENDED_MESSAGE,
    MAX_MESSAGE,
    UPDATE,
)
from .context import Context
from .prefix import prefix_size

_UPDATE_TYPE = bytes((UPDATE,))
# encode_attrs's cache key for two-octet peers, with NEXT_HOP (four-octet ones: attrs.enc):
# looked up here first, saving the call
_ENC_KEY_AS2 = _ENC_KEYS[False][True]


def _msg(body: bytes) -> bytes:
    return MARKER + (HEADER_LEN + len(body)).to_bytes(2, "big") + _UPDATE_TYPE + body


def _chunks(items, room: int, addpath: bool):
    """Split ``items`` into lists of encoded NLRI whose joined size fits ``room``."""
    if room <= 0:
        raise ValueError("attributes leave no room for NLRI")
    cur: list[bytes] = []
    size = 0
    if addpath:
        items = [pid.to_bytes(4, "big") + p for pid, p in items]
    if sum(map(len, items)) <= room:
        yield b"".join(items)  # everything fits in one message: no per-prefix loop
        return
    for p in items:
        n = len(p)
        if size + n > room and cur:
            yield b"".join(cur)
            cur = []
            size = 0
        cur.append(p)
        size += n
    if cur:
        yield b"".join(cur)


def _uses_mp(family, attrs: AttrSet | None) -> bool:
    if family != IPV4_UNICAST:
        return True
    return attrs is not None and attrs.next_hop is not None and len(attrs.next_hop) != 4


def _too_big(items, room: int, addpath: bool) -> list:
    """The items that cannot fit in ``room`` octets even one per message."""
    extra = 4 if addpath else 0
    return [it for it in items if prefix_size(it, addpath) > room] if room < 17 + extra else []


def pack_announce(family, attrs: AttrSet, items, ctx: Context) -> list[bytes]:
    """UPDATEs announcing ``items`` (prefix keys, or ``(path_id, key)`` with ADD-PATH).

    When the attributes leave no room for a prefix in a message of ``ctx.max_size`` octets (a
    set received in an extended message and sent to a peer without them, or one that grew on
    export), the route cannot be sent: those prefixes are withdrawn instead (RFC 8654 §4:
    "it must not be sent to the neighbor ... if the NLRI was previously advertised to that
    peer, it must be withdrawn").
    """
    if not items:
        return []
    addpath = family in ctx.add_path_tx
    max_size = MAX_EXTENDED_MESSAGE if ctx.extended_message else MAX_MESSAGE
    if family == IPV4_UNICAST and (attrs.next_hop is None or len(attrs.next_hop) == 4):
        block = (attrs.enc if ctx.as4 else attrs.cache.get(_ENC_KEY_AS2)) or encode_attrs(
            attrs, ctx.as4, True
        )
        room = max_size - HEADER_LEN - 4 - len(block)
        if not addpath and room >= 17:
            # the common case: the prefixes fit one message (no per-prefix work)
            nlri = items[0] if len(items) == 1 else b"".join(items)
            if len(nlri) <= room:
                size = (HEADER_LEN + 4 + len(block) + len(nlri)).to_bytes(2, "big")
                alen = len(block).to_bytes(2, "big")
                return [b"".join((MARKER, size, _UPDATE_TYPE, b"\x00\x00", alen, block, nlri))]
        head = b"\x00\x00" + len(block).to_bytes(2, "big") + block
        too_big = _too_big(items, room, addpath)
        if too_big:
            return _announce_fitting(family, attrs, items, too_big, ctx)
        return [_msg(head + nlri) for nlri in _chunks(items, room, addpath)]
    block = encode_attrs(attrs, ctx.as4, with_next_hop=False)
    afi, safi = family
    nh = attrs.next_hop or b""
    mp_fixed = afi.to_bytes(2, "big") + bytes((safi, len(nh))) + nh + b"\x00"
    # MP_REACH_NLRI with the extended length flag: 4 header octets + fixed part + NLRI.
    room = max_size - HEADER_LEN - 4 - 4 - len(mp_fixed) - len(block)
    too_big = _too_big(items, room, addpath)
    if too_big:
        return _announce_fitting(family, attrs, items, too_big, ctx)
    out = []
    for nlri in _chunks(items, room, addpath):
        value_len = len(mp_fixed) + len(nlri)
        mp = bytes((OPT | FLAG_EXTENDED, ATTR_MP_REACH_NLRI)) + value_len.to_bytes(2, "big")
        attr_len = 4 + value_len + len(block)
        out.append(_msg(b"\x00\x00" + attr_len.to_bytes(2, "big") + mp + mp_fixed + nlri + block))
    return out


def _announce_fitting(family, attrs: AttrSet, items, too_big: list, ctx: Context) -> list[bytes]:
    skip = set(too_big)
    fitting = [it for it in items if it not in skip]
    return pack_withdraw(family, too_big, ctx) + (
        pack_announce(family, attrs, fitting, ctx) if fitting else []
    )


def pack_withdraw(family, items, ctx: Context) -> list[bytes]:
    """UPDATEs withdrawing ``items``."""
    if not items:
        return []
    addpath = family in ctx.add_path_tx
    max_size = ctx.max_size
    if family == IPV4_UNICAST:
        room = max_size - HEADER_LEN - 4
        return [
            _msg(len(w).to_bytes(2, "big") + w + b"\x00\x00") for w in _chunks(items, room, addpath)
        ]
    afi, safi = family
    fixed = afi.to_bytes(2, "big") + bytes((safi,))
    room = max_size - HEADER_LEN - 4 - 4 - len(fixed)
    out = []
    for w in _chunks(items, room, addpath):
        value_len = len(fixed) + len(w)
        attr = bytes((OPT | FLAG_EXTENDED, ATTR_MP_UNREACH_NLRI)) + value_len.to_bytes(2, "big")
        out.append(_msg(b"\x00\x00" + (4 + value_len).to_bytes(2, "big") + attr + fixed + w))
    return out


def end_of_rib(family) -> bytes:
    """The End-of-RIB marker (RFC 4724 §2)."""
    if family == IPV4_UNICAST:
        return _msg(b"\x00\x00\x00\x00")
    afi, safi = family
    attr = bytes((OPT, ATTR_MP_UNREACH_NLRI, 3)) + afi.to_bytes(2, "big") + bytes((safi,))
    return _msg(b"\x00\x00" + len(attr).to_bytes(2, "big") + attr)

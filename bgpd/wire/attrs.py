"""Path attributes: one descriptor row per attribute, interned immutable attribute sets.

An UPDATE's path-attribute block is decoded once per distinct block (per pool and decoding
context) into an :class:`AttrSet` that every prefix carrying it shares. MP_REACH_NLRI and
MP_UNREACH_NLRI are not part of a set: they carry NLRI, and their next hop becomes the set's
``next_hop`` through a cached derivation.

Error handling follows RFC 7606: each row names the action taken when the attribute is
malformed (attribute-discard, treat-as-withdraw or session reset) and the RFC 4271 §6.3 subcode
recorded with it.

Two local limits (``constants.MAX_*``) bound what a peer can make us hold: an AS_PATH of more
than 1000 AS numbers or 255 segments is a Malformed AS_PATH (treat-as-withdraw; for AS4_PATH,
attribute discard), and an UPDATE with more than 256 path attributes has a Malformed Attribute
List (treat-as-withdraw).
"""

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

from .constants import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    AS_TRANS,
    ATTR_AGGREGATOR,
    ATTR_AS4_AGGREGATOR,
    ATTR_AS4_PATH,
    ATTR_AS_PATH,
    ATTR_ATOMIC_AGGREGATE,
    ATTR_CLUSTER_LIST,
    ATTR_COMMUNITIES,
    ATTR_EXT_COMMUNITIES,
    ATTR_LARGE_COMMUNITY,
    ATTR_LOCAL_PREF,
    ATTR_MED,
    ATTR_MP_REACH_NLRI,
    ATTR_MP_UNREACH_NLRI,
    ATTR_NEXT_HOP,
    ATTR_ORIGIN,
    ATTR_ORIGINATOR_ID,
    ERR_UPDATE,
    FLAG_EXTENDED,
    FLAG_OPTIONAL,
    FLAG_PARTIAL,
    FLAG_TRANSITIVE,
    MAX_AS_PATH_ASNS,
    MAX_AS_PATH_SEGMENTS,
    MAX_PATH_ATTRS,
    UPD_ATTR_FLAGS,
    UPD_ATTR_LENGTH,
    UPD_INVALID_NEXT_HOP,
    UPD_INVALID_ORIGIN,
    UPD_MALFORMED_AS_PATH,
    UPD_MALFORMED_ATTR_LIST,
    UPD_OPTIONAL_ATTR,
    UPD_UNRECOGNIZED_WELLKNOWN,
)
from .errors import Action, BGPError
from .nexthop import ipv4_problem

SEGMENT_LABELS = {AS_CONFED_SEQUENCE: "AS_CONFED_SEQUENCE", AS_CONFED_SET: "AS_CONFED_SET"}

WK = FLAG_TRANSITIVE  # well-known: optional 0, transitive 1
OPT = FLAG_OPTIONAL  # optional non-transitive
OPT_T = FLAG_OPTIONAL | FLAG_TRANSITIVE  # optional transitive


class Malformed(Exception):
    """Raised by an attribute decoder; the row's action decides what happens."""

    def __init__(self, subcode: int, detail: str) -> None:
        self.subcode = subcode
        self.detail = detail


# --- the immutable attribute set ----------------------------------------------------------

_FIELDS = (
    "origin",
    "as_path",
    "next_hop",
    "med",
    "local_pref",
    "atomic_aggregate",
    "aggregator",
    "communities",
    "originator_id",
    "cluster_list",
    "ext_communities",
    "large_communities",
    "unknown",
    "preference",
)


# What a cache on an AttrSet (``AttrSet.cache``: derived sets, policy and import/export
# verdicts) stores for "the set itself": storing the set in its own cache would make a
# reference cycle, which only a full garbage collection frees (a churning peer's replaced
# sets then pile up between collections; tests/faults/test_no_cycles.py).
SAME = object()
_MISS = object()  # AttrSet.memo: nothing cached under the key


class AttrSet:
    """One route's path attributes. Immutable and interned: compare with ``is``.

    Field values: ``origin`` int | None; ``as_path`` tuple of ``(segment_type, (asn, ...))``
    or None when absent; ``next_hop`` bytes (4, 16 or 32 octets) | None; ``med``,
    ``local_pref`` int | None; ``atomic_aggregate`` bool; ``aggregator`` ``(asn, id4)`` |
    None; ``communities`` tuple[int]; ``originator_id`` bytes | None; ``cluster_list``
    tuple[bytes]; ``ext_communities`` tuple[bytes] (8 octets each); ``large_communities``
    tuple[(int, int, int)]; ``unknown`` tuple[(flags, code, value)] for optional transitive
    attributes we pass through.

    ``preference`` is not a path attribute and never goes on the wire: the route preference
    an import filter gave the route (BIRD's ``preference = 200``), which the decision process
    compares before anything else (None: the source's preference).
    """

    # ``enc``: the attribute block for four-octet peers with NEXT_HOP (encode_attrs), the one
    # every exported IPv4 set needs: a slot of its own costs 8 octets where a first entry in
    # ``cache`` cost ~220 (the dict's table), for each set sent
    __slots__ = (*_FIELDS, "key", "_hash", "cache", "enc", "__weakref__")

    origin: int | None
    as_path: tuple | None
    next_hop: bytes | None
    med: int | None
    local_pref: int | None
    atomic_aggregate: bool
    aggregator: tuple | None
    communities: tuple
    originator_id: bytes | None
    cluster_list: tuple
    ext_communities: tuple
    large_communities: tuple
    unknown: tuple
    preference: int | None

    def __init__(
        self,
        origin=None,
        as_path=None,
        next_hop=None,
        med=None,
        local_pref=None,
        atomic_aggregate=False,
        aggregator=None,
        communities=(),
        originator_id=None,
        cluster_list=(),
        ext_communities=(),
        large_communities=(),
        unknown=(),
        preference=None,
    ) -> None:
        atomic_aggregate = bool(atomic_aggregate)
        communities = tuple(communities)
        cluster_list = tuple(cluster_list)
        ext_communities = tuple(ext_communities)
        large_communities = tuple(large_communities)
        unknown = tuple(unknown)
        # The value key, in _FIELDS order (built directly: this runs once per distinct set).
        key = (
            origin,
            as_path,
            next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator,
            communities,
            originator_id,
            cluster_list,
            ext_communities,
            large_communities,
            unknown,
            preference,
        )
        s = object.__setattr__
        for name, value in zip(_FIELDS, key, strict=True):
            s(self, name, value)
        s(self, "key", key)
        # 30 bits: an int of one digit (32 octets, not 48), plenty for dicts of sets
        s(self, "_hash", hash(key) & 0x3FFFFFFF)
        s(self, "cache", {})  # derived sets and encodings, keyed by (purpose, context)
        s(self, "enc", None)

    def __setattr__(self, name, value):
        raise AttributeError("AttrSet is immutable; use replace()")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if not isinstance(other, AttrSet):
            return NotImplemented
        return self._hash == other._hash and self.key == other.key

    def __repr__(self) -> str:
        # origin 0 (IGP), MED 0 and an empty AS_PATH are values worth showing
        parts = [
            f"{f}={v!r}"
            for f in _FIELDS
            if (v := getattr(self, f)) is not None
            and v is not False
            and (v != () or f == "as_path")
        ]
        return f"AttrSet({', '.join(parts)})"

    def replace(self, **changes) -> "AttrSet":
        """A copy with some fields changed, interned in the default pool."""
        values = {f: getattr(self, f) for f in _FIELDS}
        values.update(changes)
        return intern(AttrSet(**values))

    def memo(self, key, fn: Callable[..., Any], *args) -> Any:
        """``fn(self, *args)`` computed once per ``key`` and remembered in :attr:`cache`.

        The one memo of everything computed from a set alone (or from the set and what the
        key names): import and export verdicts, derived sets, policy results. A result that
        is the set itself is stored as :data:`SAME` (never the set: that would be a reference
        cycle); None is a result like any other.
        """
        cache = self.cache
        r = cache.get(key, _MISS)
        if r is _MISS:
            r = fn(self, *args)
            cache[key] = SAME if r is self else r
            return r
        return self if r is SAME else r

    def derive(self, purpose, fn: Callable[["AttrSet"], "AttrSet"]) -> "AttrSet":
        """``fn(self)`` computed once per ``purpose`` (an export context) and cached here."""
        return self.memo(purpose, fn)

    def with_next_hop(self, next_hop: bytes | None) -> "AttrSet":
        if next_hop == self.next_hop:
            return self
        return self.derive(("nh", next_hop), lambda a: a.replace(next_hop=next_hop))

    # convenience for the decision process and policy
    def as_path_len(self) -> int:
        """RFC 4271 §9.1.2.2: an AS_SET counts 1, confederation segments count 0."""
        return as_path_length(self.as_path or ())

    def first_as(self) -> int | None:
        for seg_type, asns in self.as_path or ():
            if seg_type == AS_SEQUENCE and asns:
                return asns[0]
            if seg_type in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
                continue
            return None
        return None

    def all_asns(self):
        for _seg_type, asns in self.as_path or ():
            yield from asns


class AttrPool:
    """Interning tables: canonical sets by value, and decode results by encoded block.

    Both hold the sets weakly: a set lives as long as a route (or a cache of a live set) uses
    it, and an attribute block seen again while its set lives is not decoded again. Holding
    decode results strongly kept every set a churning peer ever sent, so a long-running
    speaker's memory grew with each new version of a route's attributes.
    """

    __slots__ = ("by_key", "by_raw", "by_raw_error", "__weakref__")

    ERRORS_KEPT = 4096  # decode results with an RFC 7606 error kept (strongly) at most

    def __init__(self) -> None:
        self.by_key: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # (as4, ibgp, raw block) -> AttrSet, for blocks that decoded without error
        self.by_raw: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        # the same key -> (AttrSet, error) for blocks with a treat-as-withdraw or discard
        # error: rare, so a small dict emptied when full
        self.by_raw_error: dict = {}

    def intern(self, attrs: AttrSet) -> AttrSet:
        existing = self.by_key.get(attrs.key)
        if existing is not None:
            return existing
        self.by_key[attrs.key] = attrs
        return attrs

    def remember(self, key, attrs: AttrSet, error) -> None:
        """Cache a decode result for ``key``."""
        if error is None:
            self.by_raw[key] = attrs
            return
        if len(self.by_raw_error) >= self.ERRORS_KEPT:
            self.by_raw_error.clear()
        self.by_raw_error[key] = (attrs, error)

    def recall(self, key):
        """``(attrs, error)`` decoded earlier for ``key``, or None."""
        attrs = self.by_raw.get(key)
        if attrs is not None:
            return attrs, None
        return self.by_raw_error.get(key) if self.by_raw_error else None

    def __len__(self) -> int:
        return len(self.by_key)

    def __bool__(self) -> bool:
        return True  # an empty pool is still a pool (``ctx.pool or DEFAULT_POOL``)


DEFAULT_POOL = AttrPool()


def intern(attrs: AttrSet, pool: AttrPool | None = None) -> AttrSet:
    return (pool or DEFAULT_POOL).intern(attrs)


# --- per-attribute decoders -----------------------------------------------------------------


def _dec_origin(v: bytes, ctx) -> int:
    if len(v) != 1:
        raise Malformed(UPD_ATTR_LENGTH, f"ORIGIN length {len(v)}")
    if v[0] > 2:
        raise Malformed(UPD_INVALID_ORIGIN, f"ORIGIN value {v[0]}")
    return v[0]


def decode_as_path(v: bytes, asn_size: int, subcode: int = UPD_MALFORMED_AS_PATH) -> tuple:
    """Segments of an AS_PATH/AS4_PATH value; at most MAX_AS_PATH_ASNS AS numbers (counting
    every AS of every segment type) in at most MAX_AS_PATH_SEGMENTS segments."""
    segs = []
    i, n = 0, len(v)
    if n > MAX_AS_PATH_ASNS * asn_size + 2 * MAX_AS_PATH_SEGMENTS:
        raise Malformed(subcode, f"path of {n} octets exceeds the AS path length limit")
    total = 0
    from_bytes = int.from_bytes
    while i < n:
        if len(segs) >= MAX_AS_PATH_SEGMENTS:
            raise Malformed(subcode, f"more than {MAX_AS_PATH_SEGMENTS} path segments")
        if i + 2 > n:
            raise Malformed(subcode, "truncated segment header")
        seg_type, count = v[i], v[i + 1]
        if seg_type not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET):
            raise Malformed(subcode, f"segment type {seg_type}")
        if count == 0:
            raise Malformed(subcode, "empty segment")
        j = i + 2 + count * asn_size
        if j > n:
            raise Malformed(subcode, "segment overruns the attribute")
        total += count
        if total > MAX_AS_PATH_ASNS:
            raise Malformed(subcode, f"more than {MAX_AS_PATH_ASNS} AS numbers in the path")
        asns = tuple(from_bytes(v[k : k + asn_size], "big") for k in range(i + 2, j, asn_size))
        segs.append((seg_type, asns))
        i = j
    return tuple(segs)


def _no_as0(path: tuple, subcode: int, name: str) -> tuple:
    """RFC 7607 §2: AS 0 in a path makes the attribute malformed."""
    for _seg_type, asns in path:
        if 0 in asns:
            raise Malformed(subcode, f"{name} contains AS 0")
    return path


def _dec_as_path(v: bytes, ctx) -> tuple:
    path = _no_as0(decode_as_path(v, 4 if ctx.as4 else 2), UPD_MALFORMED_AS_PATH, "AS_PATH")
    for seg_type, _asns in path:
        if seg_type in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            # RFC 5065 §5: confederation segments from a neighbor outside our confederation
            # make the AS_PATH malformed. bgpd is in no confederation, so every neighbor,
            # internal ones included, is outside ours (RFC 7606 §7.2: treat-as-withdraw).
            raise Malformed(
                UPD_MALFORMED_AS_PATH,
                f"AS_PATH has an {SEGMENT_LABELS[seg_type]} segment, and bgpd is in no"
                " confederation (RFC 5065 §5)",
            )
    return path


def _dec_next_hop(v: bytes, ctx) -> bytes:
    if len(v) != 4:
        raise Malformed(UPD_ATTR_LENGTH, f"NEXT_HOP length {len(v)}")
    why = ipv4_problem(v, ctx.loopback_next_hop)
    if why is not None:
        raise Malformed(UPD_INVALID_NEXT_HOP, f"NEXT_HOP {why}")
    return bytes(v)


def _dec_u32(name: str):
    def dec(v: bytes, ctx) -> int:
        if len(v) != 4:
            raise Malformed(UPD_ATTR_LENGTH, f"{name} length {len(v)}")
        return int.from_bytes(v, "big")

    return dec


def _dec_atomic(v: bytes, ctx) -> bool:
    if v:
        raise Malformed(UPD_ATTR_LENGTH, f"ATOMIC_AGGREGATE length {len(v)}")
    return True


def _dec_aggregator(v: bytes, ctx) -> tuple:
    size = 8 if ctx.as4 else 6
    if len(v) != size:
        raise Malformed(UPD_ATTR_LENGTH, f"AGGREGATOR length {len(v)}")
    asn = int.from_bytes(v[: size - 4], "big")
    if asn == 0:
        raise Malformed(UPD_OPTIONAL_ATTR, "AGGREGATOR AS 0")  # RFC 7607 §2
    return (asn, bytes(v[size - 4 :]))


def _dec_as4_aggregator(v: bytes, ctx) -> tuple:
    if len(v) != 8:
        raise Malformed(UPD_ATTR_LENGTH, f"AS4_AGGREGATOR length {len(v)}")
    asn = int.from_bytes(v[:4], "big")
    if asn == 0:
        raise Malformed(UPD_OPTIONAL_ATTR, "AS4_AGGREGATOR AS 0")  # RFC 7607 §2
    return (asn, bytes(v[4:]))


def _dec_communities(v: bytes, ctx) -> tuple:
    if not v or len(v) % 4:
        raise Malformed(UPD_ATTR_LENGTH, f"COMMUNITIES length {len(v)}")
    return tuple(int.from_bytes(v[i : i + 4], "big") for i in range(0, len(v), 4))


def _dec_originator(v: bytes, ctx) -> bytes:
    if len(v) != 4:
        raise Malformed(UPD_ATTR_LENGTH, f"ORIGINATOR_ID length {len(v)}")
    return bytes(v)


def _dec_cluster_list(v: bytes, ctx) -> tuple:
    if not v or len(v) % 4:
        raise Malformed(UPD_ATTR_LENGTH, f"CLUSTER_LIST length {len(v)}")
    return tuple(bytes(v[i : i + 4]) for i in range(0, len(v), 4))


def _dec_ext_communities(v: bytes, ctx) -> tuple:
    if not v or len(v) % 8:
        raise Malformed(UPD_ATTR_LENGTH, f"EXTENDED_COMMUNITIES length {len(v)}")
    return tuple(bytes(v[i : i + 8]) for i in range(0, len(v), 8))


def _dec_as4_path(v: bytes, ctx) -> tuple:
    # RFC 6793 §6: malformed if too short to carry one AS number (or a bad segment).
    if len(v) < 6:
        raise Malformed(UPD_OPTIONAL_ATTR, f"AS4_PATH length {len(v)}")
    return _no_as0(decode_as_path(v, 4, UPD_OPTIONAL_ATTR), UPD_OPTIONAL_ATTR, "AS4_PATH")


def _dec_large(v: bytes, ctx) -> tuple:
    if not v or len(v) % 12:
        raise Malformed(UPD_ATTR_LENGTH, f"LARGE_COMMUNITY length {len(v)}")
    fb = int.from_bytes
    return tuple(
        (fb(v[i : i + 4], "big"), fb(v[i + 4 : i + 8], "big"), fb(v[i + 8 : i + 12], "big"))
        for i in range(0, len(v), 12)
    )


class AttrSpec(NamedTuple):
    name: str
    flags: int  # expected optional/transitive bits
    field: str | None  # AttrSet field it fills (None: handled by the UPDATE decoder)
    decode: Callable | None
    action: Action  # RFC 7606 action when malformed (also used for a flags error)
    ibgp_only: bool = False  # from an external peer: silently discarded (RFC 7606 §7.5, 7.9, 7.10)


# The descriptor table: every attribute we understand, in one place (RFC 7606 §7).
# A flags error takes the row's action too: RFC 7606 §3(c) says treat-as-withdraw "unless the
# specification for the attribute mandates different handling", and §3(f) makes every reset
# case of ATOMIC_AGGREGATE and AGGREGATOR an attribute-discard; RFC 6793 §6 does the same for
# AS4_PATH and AS4_AGGREGATOR. AS 0 in a path or aggregator is malformed (RFC 7607 §2).
ATTRS: dict[int, AttrSpec] = {
    # §7.1: length != 1 or undefined value
    ATTR_ORIGIN: AttrSpec("ORIGIN", WK, "origin", _dec_origin, Action.WITHDRAW),
    # §7.2: bad segment type, overrun, underrun, zero-length segment; RFC 7607 AS 0
    ATTR_AS_PATH: AttrSpec("AS_PATH", WK, "as_path", _dec_as_path, Action.WITHDRAW),
    # §7.3: length != 4; RFC 4271 §6.3: not a host address (3/8, the classes of .nexthop)
    ATTR_NEXT_HOP: AttrSpec("NEXT_HOP", WK, "next_hop", _dec_next_hop, Action.WITHDRAW),
    # §7.4
    ATTR_MED: AttrSpec("MULTI_EXIT_DISC", OPT, "med", _dec_u32("MULTI_EXIT_DISC"), Action.WITHDRAW),
    # §7.5: discarded from an external peer, treat-as-withdraw from an internal one
    ATTR_LOCAL_PREF: AttrSpec(
        "LOCAL_PREF", WK, "local_pref", _dec_u32("LOCAL_PREF"), Action.WITHDRAW, True
    ),
    # §7.6
    ATTR_ATOMIC_AGGREGATE: AttrSpec(
        "ATOMIC_AGGREGATE", WK, "atomic_aggregate", _dec_atomic, Action.DISCARD
    ),
    # §7.7: length != 6 (two-octet peer) or 8; RFC 7607 AS 0
    ATTR_AGGREGATOR: AttrSpec("AGGREGATOR", OPT_T, "aggregator", _dec_aggregator, Action.DISCARD),
    # §7.8: length not a non-zero multiple of 4
    ATTR_COMMUNITIES: AttrSpec(
        "COMMUNITIES", OPT_T, "communities", _dec_communities, Action.WITHDRAW
    ),
    # §7.9, §7.10: discarded from an external peer, treat-as-withdraw from an internal one
    ATTR_ORIGINATOR_ID: AttrSpec(
        "ORIGINATOR_ID", OPT, "originator_id", _dec_originator, Action.WITHDRAW, True
    ),
    ATTR_CLUSTER_LIST: AttrSpec(
        "CLUSTER_LIST", OPT, "cluster_list", _dec_cluster_list, Action.WITHDRAW, True
    ),
    # §7.11, §5.3: the NLRI cannot be trusted: session reset (we do not do AFI/SAFI disable)
    ATTR_MP_REACH_NLRI: AttrSpec("MP_REACH_NLRI", OPT, None, None, Action.RESET),
    ATTR_MP_UNREACH_NLRI: AttrSpec("MP_UNREACH_NLRI", OPT, None, None, Action.RESET),
    # §7.14: length not a non-zero multiple of 8
    ATTR_EXT_COMMUNITIES: AttrSpec(
        "EXTENDED_COMMUNITIES", OPT_T, "ext_communities", _dec_ext_communities, Action.WITHDRAW
    ),
    # RFC 6793 §6: attribute discard
    ATTR_AS4_PATH: AttrSpec("AS4_PATH", OPT_T, None, _dec_as4_path, Action.DISCARD),
    ATTR_AS4_AGGREGATOR: AttrSpec(
        "AS4_AGGREGATOR", OPT_T, None, _dec_as4_aggregator, Action.DISCARD
    ),
    # RFC 8092 §6: length not a non-zero multiple of 12
    ATTR_LARGE_COMMUNITY: AttrSpec(
        "LARGE_COMMUNITY", OPT_T, "large_communities", _dec_large, Action.WITHDRAW
    ),
}

ATTR_NAMES = {code: spec.name for code, spec in ATTRS.items()}


class RawBlock(NamedTuple):
    """The result of scanning an attribute block: where each attribute is."""

    attrs: list  # (flags, code, value_start, value_end, attr_start) for non-MP attributes
    mp_reach: tuple | None  # (value_start, value_end)
    mp_unreach: tuple | None
    error: BGPError | None  # a non-reset error found while scanning (duplicates, framing)


def worse(old: BGPError | None, new: BGPError) -> BGPError:
    """The error to keep: the stronger action wins, the earlier error on a tie (RFC 7606 §3(h))."""
    if old is None or new.action > old.action:
        return new
    return old


def _framing_error(data, i: int, end: int, code: int | None, subcode: int, detail: str):
    """RFC 7606 §4: an attribute header or value that overruns the block.

    The Total Attribute Length still locates the NLRI, so this is treat-as-withdraw, unless
    the broken attribute is MP_REACH_NLRI or MP_UNREACH_NLRI, whose NLRI are then lost (§3(j)).
    """
    action = Action.WITHDRAW
    if code in (ATTR_MP_REACH_NLRI, ATTR_MP_UNREACH_NLRI):
        action = Action.RESET
    data_field = data[i:end] if subcode == UPD_ATTR_LENGTH else b""
    return BGPError(ERR_UPDATE, subcode, data_field, action, detail)


def scan_block(data: bytes, start: int, end: int) -> RawBlock:
    """Walk the TLVs of a path-attribute block, checking framing only (RFC 7606 §3, §4).

    Raises :class:`BGPError` for errors that need a session reset; others are returned in
    ``error`` with the attributes found before them.
    """
    attrs = []
    seen: set[int] = set()
    mp_reach = mp_unreach = None
    error = None
    count = 0
    i = start
    while i < end:
        count += 1
        if count == MAX_PATH_ATTRS + 1:
            # Keep scanning (framing only) so that MP_REACH_NLRI/MP_UNREACH_NLRI are found and
            # their NLRI withdrawn too.
            error = worse(
                error,
                BGPError(
                    ERR_UPDATE,
                    UPD_MALFORMED_ATTR_LIST,
                    b"",
                    Action.WITHDRAW,
                    f"more than {MAX_PATH_ATTRS} path attributes",
                ),
            )
        if i + 3 > end or (data[i] & FLAG_EXTENDED and i + 4 > end):
            code = data[i + 1] if i + 2 <= end else None
            err = _framing_error(
                data, i, end, code, UPD_MALFORMED_ATTR_LIST, "truncated attribute header"
            )
            if err.action == Action.RESET:
                raise err
            error = worse(error, err)
            break
        flags, code = data[i], data[i + 1]
        if flags & FLAG_EXTENDED:
            vlen = (data[i + 2] << 8) | data[i + 3]
            vs = i + 4
        else:
            vlen = data[i + 2]
            vs = i + 3
        ve = vs + vlen
        if ve > end:
            err = _framing_error(
                data,
                i,
                end,
                code,
                UPD_ATTR_LENGTH,
                f"attribute {code} length {vlen} overruns the attribute block",
            )
            if err.action == Action.RESET:
                raise err
            error = worse(error, err)
            break
        if code in seen:
            if code in (ATTR_MP_REACH_NLRI, ATTR_MP_UNREACH_NLRI):
                raise BGPError(
                    ERR_UPDATE,
                    UPD_MALFORMED_ATTR_LIST,
                    b"",
                    Action.RESET,
                    f"duplicate attribute {code}",
                )
            # RFC 7606 §3(g): keep the first, discard the rest.
            error = worse(
                error,
                BGPError(
                    ERR_UPDATE,
                    UPD_MALFORMED_ATTR_LIST,
                    b"",
                    Action.DISCARD,
                    f"duplicate attribute {code}",
                ),
            )
        else:
            seen.add(code)
            if code == ATTR_MP_REACH_NLRI:
                if flags & 0xC0 != OPT:
                    raise _flags_error(data, i, ve, code, Action.RESET)
                mp_reach = (vs, ve)
            elif code == ATTR_MP_UNREACH_NLRI:
                if flags & 0xC0 != OPT:
                    raise _flags_error(data, i, ve, code, Action.RESET)
                mp_unreach = (vs, ve)
            else:
                attrs.append((flags, code, vs, ve, i))
        i = ve
    return RawBlock(attrs, mp_reach, mp_unreach, error)


def _flags_error(data, i, ve, code, action) -> BGPError:
    return BGPError(
        ERR_UPDATE,
        UPD_ATTR_FLAGS,
        data[i:ve],
        action,
        f"flags 0x{data[i]:02x} wrong for attribute {code}",
    )


def decode_attr_list(data: bytes, attrs: list, ctx) -> tuple[AttrSet, BGPError | None]:
    """Decode the non-MP attributes found by :func:`scan_block` into a fresh (un-interned) set."""
    values: dict = {}
    unknown = []
    error: BGPError | None = None
    as4_path = as4_aggr = None
    for flags, code, vs, ve, start in attrs:
        spec = ATTRS.get(code)
        if spec is None:
            if not flags & FLAG_OPTIONAL:
                raise BGPError(
                    ERR_UPDATE,
                    UPD_UNRECOGNIZED_WELLKNOWN,
                    data[start:ve],
                    Action.RESET,
                    f"unrecognized well-known attribute {code}",
                )
            if flags & FLAG_TRANSITIVE:
                # Passed on with the Partial bit set (RFC 4271 §5). Only the three defined
                # bits are kept: the extended-length bit is chosen again when encoding, and
                # the unused low bits "MUST be ignored when received".
                unknown.append(((flags & 0xE0) | FLAG_PARTIAL, code, bytes(data[vs:ve])))
            continue
        if spec.ibgp_only and not ctx.ibgp:
            continue  # RFC 7606 §7.5, 7.9, 7.10: from an external peer, attribute discard
        # Well-known and optional non-transitive attributes must not carry the Partial bit.
        if (flags & 0xC0) != spec.flags or (spec.flags != OPT_T and flags & FLAG_PARTIAL):
            error = worse(error, _flags_error(data, start, ve, code, spec.action))
            continue
        try:
            value = spec.decode(data[vs:ve], ctx)
        except Malformed as m:
            subcode = m.subcode
            if subcode == UPD_ATTR_LENGTH and code in (ATTR_AS4_PATH, ATTR_AS4_AGGREGATOR):
                subcode = UPD_OPTIONAL_ATTR
            err = BGPError(ERR_UPDATE, subcode, data[start:ve], spec.action, m.detail)
            error = worse(error, err)
            continue
        if code == ATTR_AS4_PATH:
            as4_path = value
        elif code == ATTR_AS4_AGGREGATOR:
            as4_aggr = value
        else:
            values[spec.field] = value
    if not ctx.as4 and (as4_path is not None or as4_aggr is not None):
        _merge_as4(values, as4_path, as4_aggr)
    # With a four-octet peer, AS4_PATH and AS4_AGGREGATOR are ignored (RFC 6793 §4.1).
    if unknown:
        values["unknown"] = tuple(unknown)
    return AttrSet(**values), error


def _merge_as4(values: dict, as4_path, as4_aggr) -> None:
    """RFC 6793 §4.2.3: rebuild the real path from AS_PATH and AS4_PATH."""
    aggr = values.get("aggregator")
    if aggr is not None and as4_aggr is not None:
        # "When both the attributes are received": an AGGREGATOR AS other than AS_TRANS
        # means an OLD speaker aggregated, and the AS4 attributes are stale.
        if aggr[0] != AS_TRANS:
            return
        values["aggregator"] = as4_aggr
    as_path = values.get("as_path")
    if as4_path is None or as_path is None:
        return
    # AS4_PATH must not carry confederation segments: drop them (RFC 6793 §6).
    as4_path = tuple(s for s in as4_path if s[0] in (AS_SEQUENCE, AS_SET))
    n_as = as_path_length(as_path)
    n_as4 = as_path_length(as4_path)
    if n_as < n_as4:
        return  # inconsistent: keep AS_PATH
    # Take as many AS numbers from the front of AS_PATH as AS4_PATH lacks. Confederation
    # segments count zero and are kept when they lead or are adjacent to a taken segment.
    keep = n_as - n_as4
    head = []
    for seg_type, asns in as_path:
        if seg_type in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            head.append((seg_type, asns))
            continue
        if keep <= 0:
            break
        if seg_type == AS_SEQUENCE:
            take = asns[:keep]
            head.append((seg_type, take))
            keep -= len(take)
        else:  # AS_SET counts 1
            head.append((seg_type, asns))
            keep -= 1
    tail = list(as4_path)
    if head and tail and head[-1][0] == AS_SEQUENCE and tail[0][0] == AS_SEQUENCE:
        # one sequence cut in two by the reconstruction: join it again
        tail[0] = (AS_SEQUENCE, head.pop()[1] + tail[0][1])
    values["as_path"] = tuple(head) + tuple(tail)


def as_path_length(path) -> int:
    """The length of an AS path (segments): an AS_SET counts 1, confederation segments 0
    (RFC 4271 §9.1.2.2): the decision process, and the AS4_PATH merge comparing the two."""
    n = 0
    for seg_type, asns in path:
        if seg_type == AS_SEQUENCE:
            n += len(asns)
        elif seg_type == AS_SET:
            n += 1
    return n


# --- encoding -------------------------------------------------------------------------------


def _tlv(flags: int, code: int, value: bytes) -> bytes:
    n = len(value)
    if n > 255:
        return bytes((flags | FLAG_EXTENDED, code, n >> 8, n & 0xFF)) + value
    return bytes((flags & ~FLAG_EXTENDED, code, n)) + value


def encode_as_path(path, asn_size: int) -> bytes:
    out = bytearray()
    for seg_type, asns in path:
        # Segments hold at most 255 ASNs; split longer ones.
        for k in range(0, len(asns), 255):
            chunk = asns[k : k + 255]
            out += bytes((seg_type, len(chunk)))
            for a in chunk:
                out += a.to_bytes(asn_size, "big")
    return bytes(out)


# encode_attrs's cache keys, [as4][with_next_hop] (one tuple each, not one per cached set)
_ENC_KEYS = {a: {nh: ("enc", a, nh) for nh in (False, True)} for a in (False, True)}


def encode_attrs(attrs: AttrSet, as4: bool = True, with_next_hop: bool = True) -> bytes:
    """The path-attribute block for ``attrs`` (without MP attributes), cached on the set.

    ``with_next_hop`` emits the NEXT_HOP attribute (IPv4 unicast NLRI in the classic field).
    For a two-octet peer (``as4`` false) the AS_PATH carries AS_TRANS for four-octet ASNs and
    the real path follows in AS4_PATH (RFC 6793 §4.2.2). Attributes go out in type-code order.
    """
    common = bool(as4 and with_next_hop)  # kept in attrs.enc, the others in attrs.cache
    key = _ENC_KEYS[bool(as4)][bool(with_next_hop)]  # shared by every set that caches it
    cached = attrs.enc if common else attrs.cache.get(key)
    if cached is not None:
        return cached
    out: list[tuple[int, int, bytes]] = []  # (code, flags, value)
    add = out.append
    if attrs.origin is not None:
        add((ATTR_ORIGIN, WK, bytes((attrs.origin,))))
    if attrs.as_path is not None:
        if as4:
            add((ATTR_AS_PATH, WK, encode_as_path(attrs.as_path, 4)))
        else:
            two = tuple(
                (t, tuple(a if a <= 0xFFFF else AS_TRANS for a in asns))
                for t, asns in attrs.as_path
            )
            add((ATTR_AS_PATH, WK, encode_as_path(two, 2)))
            # RFC 6793 §4.2.2: AS4_PATH carries no confederation segments, and is sent only
            # when the path holds a non-mappable AS (an empty AS4_PATH would be malformed).
            real = tuple(s for s in attrs.as_path if s[0] in (AS_SEQUENCE, AS_SET))
            if any(a > 0xFFFF for _t, asns in real for a in asns):
                add((ATTR_AS4_PATH, OPT_T, encode_as_path(real, 4)))
    nh = attrs.next_hop
    if with_next_hop and nh is not None and len(nh) == 4:
        add((ATTR_NEXT_HOP, WK, nh))
    if attrs.med is not None:
        add((ATTR_MED, OPT, attrs.med.to_bytes(4, "big")))
    if attrs.local_pref is not None:
        add((ATTR_LOCAL_PREF, WK, attrs.local_pref.to_bytes(4, "big")))
    if attrs.atomic_aggregate:
        add((ATTR_ATOMIC_AGGREGATE, WK, b""))
    if attrs.aggregator is not None:
        asn, ident = attrs.aggregator
        if as4:
            add((ATTR_AGGREGATOR, OPT_T, asn.to_bytes(4, "big") + ident))
        else:
            two_as = asn if asn <= 0xFFFF else AS_TRANS
            add((ATTR_AGGREGATOR, OPT_T, two_as.to_bytes(2, "big") + ident))
            if asn > 0xFFFF:
                add((ATTR_AS4_AGGREGATOR, OPT_T, asn.to_bytes(4, "big") + ident))
    if attrs.communities:
        add((ATTR_COMMUNITIES, OPT_T, b"".join(c.to_bytes(4, "big") for c in attrs.communities)))
    if attrs.originator_id is not None:
        add((ATTR_ORIGINATOR_ID, OPT, attrs.originator_id))
    if attrs.cluster_list:
        add((ATTR_CLUSTER_LIST, OPT, b"".join(attrs.cluster_list)))
    if attrs.ext_communities:
        add((ATTR_EXT_COMMUNITIES, OPT_T, b"".join(attrs.ext_communities)))
    if attrs.large_communities:
        value = b"".join(
            a.to_bytes(4, "big") + b.to_bytes(4, "big") + c.to_bytes(4, "big")
            for a, b, c in attrs.large_communities
        )
        add((ATTR_LARGE_COMMUNITY, OPT_T, value))
    for flags, code, value in attrs.unknown:
        add((code, (flags & 0xE0) | FLAG_PARTIAL, value))
    out.sort(key=lambda t: t[0])
    result = b"".join(_tlv(flags, code, value) for code, flags, value in out)
    if common:
        object.__setattr__(attrs, "enc", result)
    else:
        attrs.cache[key] = result
    return result


def tlv(flags: int, code: int, value: bytes) -> bytes:
    """One encoded attribute (extended length chosen automatically)."""
    return _tlv(flags, code, value)

"""BGP messages (RFC 4271 §4): decode from a body, encode to a full message with header."""

from dataclasses import dataclass, field
from typing import NamedTuple

from . import prefix as pfx
from .attrs import (
    DEFAULT_POOL,
    OPT,
    AttrPool,
    AttrSet,
    decode_attr_list,
    encode_attrs,
    scan_block,
    tlv,
    worse,
)
from .capabilities import (
    CapabilityError,
    FourOctetAS,
    decode_capability,
    encode_capability,
)
from .constants import (
    AFI_IPV4,
    AFI_IPV6,
    AS_TRANS,
    ATTR_AS_PATH,
    ATTR_LOCAL_PREF,
    ATTR_MP_REACH_NLRI,
    ATTR_MP_UNREACH_NLRI,
    ATTR_NEXT_HOP,
    ATTR_ORIGIN,
    CEASE_ADMIN_RESET,
    CEASE_ADMIN_SHUTDOWN,
    ERR_CEASE,
    ERR_HEADER,
    ERR_OPEN,
    ERR_ROUTE_REFRESH,
    ERR_UPDATE,
    HDR_BAD_LENGTH,
    HDR_BAD_TYPE,
    HEADER_LEN,
    IPV4_UNICAST,
    IPV6_UNICAST,
    KEEPALIVE,
    MARKER,
    NOTIFICATION,
    OPEN,
    OPEN_BAD_BGP_ID,
    OPEN_BAD_PEER_AS,
    OPEN_UNACCEPTABLE_HOLD_TIME,
    OPEN_UNSUPPORTED_OPT_PARAM,
    OPEN_UNSUPPORTED_VERSION,
    ROUTE_REFRESH,
    RR_INVALID_LENGTH,
    RR_NORMAL,
    UPD_INVALID_NEXT_HOP,
    UPD_MALFORMED_ATTR_LIST,
    UPD_MISSING_WELLKNOWN,
    UPD_OPTIONAL_ATTR,
    UPDATE,
    error_reason,
)
from .context import DEFAULT, Context
from .errors import Action, BGPError
from .nexthop import check_mp_next_hop


def _header(msg_type: int, body_len: int) -> bytes:
    return MARKER + (HEADER_LEN + body_len).to_bytes(2, "big") + bytes((msg_type,))


def _length_error(total: int) -> BGPError:
    return BGPError(
        ERR_HEADER, HDR_BAD_LENGTH, total.to_bytes(2, "big"), Action.RESET, f"length {total}"
    )


# --- families -------------------------------------------------------------------------------


class AfSpec(NamedTuple):
    name: str
    afi: int
    next_hop_lengths: tuple[int, ...]  # lengths valid in MP_REACH_NLRI


# One row per address family we carry (BIRD's bgp_af_table).
AFS: dict[tuple[int, int], AfSpec] = {
    IPV4_UNICAST: AfSpec("ipv4", AFI_IPV4, (4, 16, 32)),  # 16/32: RFC 8950 IPv6 next hop
    IPV6_UNICAST: AfSpec("ipv6", AFI_IPV6, (16, 32)),  # 32: global + link-local
}


# --- OPEN -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Open:
    asn: int  # the real AS: from the four-octet capability if present, else the 2-octet field
    hold_time: int
    router_id: str
    capabilities: tuple = ()
    version: int = 4
    my_as_field: int | None = field(
        default=None, compare=False
    )  # the 2-octet "My Autonomous System" as sent (AS_TRANS...)
    type = OPEN

    @property
    def four_octet_as(self) -> int | None:
        for c in self.capabilities:
            if isinstance(c, FourOctetAS):
                return c.asn
        return None

    def encode(self, ctx: Context = DEFAULT) -> bytes:
        asn2 = self.my_as_field
        if asn2 is None:
            asn2 = self.asn if self.asn <= 0xFFFF else AS_TRANS
        caps = b"".join(encode_capability(c) for c in self.capabilities)
        rid = pfx.addr_from_str(self.router_id)
        fixed = (
            bytes((self.version,))
            + asn2.to_bytes(2, "big")
            + self.hold_time.to_bytes(2, "big")
            + rid
        )
        if not caps:
            body = fixed + b"\x00"
        elif len(caps) + 2 <= 255:
            body = fixed + bytes((len(caps) + 2, 2, len(caps))) + caps
        else:
            # RFC 9072 extended optional parameters: 255, 255, 2-octet length, 2-octet lengths.
            param = b"\x02" + len(caps).to_bytes(2, "big") + caps
            body = fixed + b"\xff\xff" + len(param).to_bytes(2, "big") + param
        return _header(OPEN, len(body)) + body


def decode_open(body: bytes) -> Open:
    total = len(body) + HEADER_LEN
    if len(body) < 10:
        raise _length_error(total)
    version = body[0]
    if version != 4:
        raise BGPError(
            ERR_OPEN, OPEN_UNSUPPORTED_VERSION, b"\x00\x04", Action.RESET, f"version {version}"
        )
    my_as = (body[1] << 8) | body[2]
    hold = (body[3] << 8) | body[4]
    rid_raw = body[5:9]
    opt_len = body[9]
    i = 10
    extended = False
    if opt_len == 255 and len(body) > 10 and body[10] == 255:
        # RFC 9072
        if len(body) < 13:
            raise _length_error(total)
        opt_len = (body[11] << 8) | body[12]
        i = 13
        extended = True
    if i + opt_len != len(body):
        raise _length_error(total)
    caps = []
    end = i + opt_len
    while i < end:
        if extended:
            if i + 3 > end:
                raise BGPError(ERR_OPEN, 0, b"", Action.RESET, "truncated optional parameter")
            ptype, plen, vs = body[i], (body[i + 1] << 8) | body[i + 2], i + 3
        else:
            if i + 2 > end:
                raise BGPError(ERR_OPEN, 0, b"", Action.RESET, "truncated optional parameter")
            ptype, plen, vs = body[i], body[i + 1], i + 2
        ve = vs + plen
        if ve > end:
            raise BGPError(ERR_OPEN, 0, b"", Action.RESET, "optional parameter overruns the OPEN")
        if ptype != 2:
            raise BGPError(
                ERR_OPEN,
                OPEN_UNSUPPORTED_OPT_PARAM,
                b"",
                Action.RESET,
                f"optional parameter type {ptype}",
            )
        j = vs
        while j < ve:
            if j + 2 > ve:
                raise BGPError(ERR_OPEN, 0, b"", Action.RESET, "truncated capability")
            code, clen = body[j], body[j + 1]
            if j + 2 + clen > ve:
                raise BGPError(ERR_OPEN, 0, b"", Action.RESET, f"capability {code} overruns")
            try:
                caps.append(decode_capability(code, body[j + 2 : j + 2 + clen]))
            except CapabilityError as e:
                raise BGPError(ERR_OPEN, 0, b"", Action.RESET, str(e))
            j += 2 + clen
        i = ve
    if hold in (1, 2):
        raise BGPError(
            ERR_OPEN, OPEN_UNACCEPTABLE_HOLD_TIME, b"", Action.RESET, f"hold time {hold}"
        )
    if rid_raw == b"\x00\x00\x00\x00":
        raise BGPError(ERR_OPEN, OPEN_BAD_BGP_ID, b"", Action.RESET, "BGP identifier 0.0.0.0")
    asn = my_as
    for c in caps:
        if isinstance(c, FourOctetAS):
            asn = c.asn
            break
    if my_as == 0 or asn == 0:
        # RFC 7607 §2: a peer AS of zero aborts the connection with Bad Peer AS.
        raise BGPError(ERR_OPEN, OPEN_BAD_PEER_AS, b"", Action.RESET, "peer AS 0")
    return Open(
        asn=asn,
        hold_time=hold,
        router_id=pfx.addr_to_str(rid_raw),
        capabilities=tuple(caps),
        version=version,
        my_as_field=my_as,
    )


# --- UPDATE ---------------------------------------------------------------------------------


class MpReach:
    """MP_REACH_NLRI: ``attrs`` is the UPDATE's set with this family's next hop."""

    __slots__ = ("afi", "safi", "next_hop", "nlri", "attrs")

    def __init__(self, afi, safi, next_hop, nlri, attrs=None):
        self.afi = afi
        self.safi = safi
        self.next_hop = next_hop
        self.nlri = nlri
        self.attrs = attrs

    @property
    def family(self):
        return (self.afi, self.safi)

    def __eq__(self, other):
        return isinstance(other, MpReach) and (
            self.afi,
            self.safi,
            self.next_hop,
            self.nlri,
        ) == (other.afi, other.safi, other.next_hop, other.nlri)

    def __repr__(self):
        return f"MpReach(afi={self.afi}, safi={self.safi}, next_hop={self.next_hop!r}, nlri={self.nlri!r})"


class MpUnreach:
    __slots__ = ("afi", "safi", "withdrawn")

    def __init__(self, afi, safi, withdrawn):
        self.afi = afi
        self.safi = safi
        self.withdrawn = withdrawn

    @property
    def family(self):
        return (self.afi, self.safi)

    def __eq__(self, other):
        return isinstance(other, MpUnreach) and (self.afi, self.safi, self.withdrawn) == (
            other.afi,
            other.safi,
            other.withdrawn,
        )

    def __repr__(self):
        return f"MpUnreach(afi={self.afi}, safi={self.safi}, withdrawn={self.withdrawn!r})"


class Update:
    """An UPDATE. Prefixes are wire-encoded ``bytes`` (``(path_id, bytes)`` with ADD-PATH).

    ``error`` is the strongest non-fatal error found (RFC 7606): with ``Action.WITHDRAW`` every
    announced prefix must be treated as withdrawn; :meth:`reach` and :meth:`unreach` apply that.
    """

    __slots__ = ("withdrawn", "attrs", "nlri", "mp_reach", "mp_unreach", "error")
    type = UPDATE

    def __init__(
        self,
        withdrawn=(),
        attrs: AttrSet | None = None,
        nlri=(),
        mp_reach: MpReach | None = None,
        mp_unreach: MpUnreach | None = None,
        error: BGPError | None = None,
    ):
        self.withdrawn = list(withdrawn)
        self.attrs = attrs
        self.nlri = list(nlri)
        self.mp_reach = mp_reach
        self.mp_unreach = mp_unreach
        self.error = error

    def __eq__(self, other):
        if not isinstance(other, Update):
            return NotImplemented
        return (
            self.withdrawn == other.withdrawn
            and self.attrs == other.attrs
            and self.nlri == other.nlri
            and self.mp_reach == other.mp_reach
            and self.mp_unreach == other.mp_unreach
        )

    def __repr__(self):
        return (
            f"Update(withdrawn={self.withdrawn!r}, attrs={self.attrs!r}, nlri={self.nlri!r}, "
            f"mp_reach={self.mp_reach!r}, mp_unreach={self.mp_unreach!r}, error={self.error!r})"
        )

    @property
    def treat_as_withdraw(self) -> bool:
        return self.error is not None and self.error.action == Action.WITHDRAW

    def eor(self):
        """The family this End-of-RIB marker is for (RFC 4724 §2), or None."""
        if self.withdrawn or self.nlri or self.mp_reach is not None:
            return None
        if self.attrs is None and self.mp_unreach is None:
            return IPV4_UNICAST
        if (
            self.mp_unreach is not None
            and not self.mp_unreach.withdrawn
            and (self.attrs is None or self.attrs == _EMPTY)
        ):
            return self.mp_unreach.family
        return None

    def reach(self) -> list:
        """``[(family, attrs, prefixes)]`` announced by this UPDATE (empty if treat-as-withdraw)."""
        if self.treat_as_withdraw:
            return []
        out = []
        if self.nlri:
            out.append((IPV4_UNICAST, self.attrs, self.nlri))
        mp = self.mp_reach
        if mp is not None and mp.nlri and mp.family in AFS:
            out.append((mp.family, mp.attrs, mp.nlri))
        return out

    def unreach(self) -> list:
        """``[(family, prefixes)]`` withdrawn, including announcements treated as withdrawn."""
        out = []
        if self.withdrawn:
            out.append((IPV4_UNICAST, self.withdrawn))
        mu = self.mp_unreach
        if mu is not None and mu.withdrawn and mu.family in AFS:
            out.append((mu.family, mu.withdrawn))
        if self.treat_as_withdraw:
            if self.nlri:
                out.append((IPV4_UNICAST, self.nlri))
            mp = self.mp_reach
            if mp is not None and mp.nlri and mp.family in AFS:
                out.append((mp.family, mp.nlri))
        return out

    def encode(self, ctx: Context = DEFAULT) -> bytes:
        """Encode as one message (no splitting: use :mod:`bgpd.wire.packer` for that)."""
        addpath4 = IPV4_UNICAST in ctx.add_path_tx
        withdrawn = pfx.encode_nlri(self.withdrawn, addpath4)
        parts = []
        if self.mp_reach is not None:
            parts.append(encode_mp_reach(self.mp_reach, ctx))
        if self.mp_unreach is not None:
            parts.append(encode_mp_unreach(self.mp_unreach, ctx))
        if self.attrs is not None:
            parts.append(encode_attrs(self.attrs, ctx.as4, with_next_hop=True))
        attrs = b"".join(parts)
        nlri = pfx.encode_nlri(self.nlri, addpath4)
        body = (
            len(withdrawn).to_bytes(2, "big")
            + withdrawn
            + len(attrs).to_bytes(2, "big")
            + attrs
            + nlri
        )
        return _header(UPDATE, len(body)) + body


_EMPTY = AttrSet()


def encode_mp_reach(mp: MpReach, ctx: Context) -> bytes:
    addpath = (mp.afi, mp.safi) in ctx.add_path_tx
    nh = mp.next_hop or b""
    value = (
        mp.afi.to_bytes(2, "big")
        + bytes((mp.safi, len(nh)))
        + nh
        + b"\x00"
        + pfx.encode_nlri(mp.nlri, addpath)
    )
    return tlv(OPT, ATTR_MP_REACH_NLRI, value)


def encode_mp_unreach(mu: MpUnreach, ctx: Context) -> bytes:
    addpath = (mu.afi, mu.safi) in ctx.add_path_tx
    value = mu.afi.to_bytes(2, "big") + bytes((mu.safi,)) + pfx.encode_nlri(mu.withdrawn, addpath)
    return tlv(OPT, ATTR_MP_UNREACH_NLRI, value)


def _mp_error(detail: str, data: bytes = b"") -> BGPError:
    return BGPError(ERR_UPDATE, UPD_OPTIONAL_ATTR, data, Action.RESET, detail)


def _parse_nlri(data, start, end, family, ctx_rx):
    if family in ctx_rx:
        return pfx.parse_prefixes_addpath(data, start, end, family[0])
    return pfx.parse_prefixes(data, start, end, family[0])


# decode_update's interning keys start with one octet naming what the decoding depended on:
# [as4][ibgp][loopback_next_hop]
_RAW_CONTEXT = {
    a: {i: {lo: bytes((a * 4 + i * 2 + lo,)) for lo in (0, 1)} for i in (0, 1)} for a in (0, 1)
}


def decode_update(body: bytes, ctx: Context = DEFAULT) -> Update:
    """Decode an UPDATE body (RFC 4271 §4.3, §6.3; RFC 4760; RFC 7606; RFC 7911)."""
    n = len(body)
    if n < 4:
        raise _length_error(n + HEADER_LEN)
    wlen = (body[0] << 8) | body[1]
    if 2 + wlen + 2 > n:
        raise BGPError(
            ERR_UPDATE, UPD_MALFORMED_ATTR_LIST, b"", Action.RESET, "withdrawn length overruns"
        )
    a_start = 4 + wlen
    alen = (body[2 + wlen] << 8) | body[3 + wlen]
    a_end = a_start + alen
    if a_end > n:
        raise BGPError(
            ERR_UPDATE, UPD_MALFORMED_ATTR_LIST, b"", Action.RESET, "attribute length overruns"
        )
    rx = ctx.add_path_rx
    withdrawn = _parse_nlri(body, 2, 2 + wlen, IPV4_UNICAST, rx) if wlen else []
    nlri = _parse_nlri(body, a_end, n, IPV4_UNICAST, rx) if a_end < n else []
    if not alen:
        error = None
        if nlri:
            # RFC 7606 §3(d): NLRI without any path attribute lack ORIGIN.
            error = _missing(ATTR_ORIGIN)
        return Update(withdrawn, None, nlri, error=error)

    pool: AttrPool = ctx.pool or DEFAULT_POOL
    scan = scan_block(body, a_start, a_end)
    mp_reach = mp_unreach = None
    if scan.mp_reach is not None:
        mp_reach = _decode_mp_reach(body, *scan.mp_reach, rx)
    if scan.mp_unreach is not None:
        mp_unreach = _decode_mp_unreach(body, *scan.mp_unreach, rx)

    attrs = None
    error = None
    if scan.attrs or mp_reach is not None:
        # The interning key: one octet for the decoding context, then the non-MP attributes
        # (one bytes object: a tuple around them cost ~80 octets more per set remembered).
        head = _RAW_CONTEXT[bool(ctx.as4)][bool(ctx.ibgp)][bool(ctx.loopback_next_hop)]
        if scan.mp_reach is None and scan.mp_unreach is None and scan.error is None:
            key = head + body[a_start:a_end]
        else:
            key = b"".join((head, *(body[s:e] for _f, _c, _vs, e, s in scan.attrs)))
        hit = pool.recall(key)
        if hit is None:
            attrs, error = decode_attr_list(body, scan.attrs, ctx)
            attrs = pool.intern(attrs)
            pool.remember(key, attrs, error)
        else:
            attrs, error = hit
    # else: only MP_UNREACH_NLRI (or nothing we keep): a withdrawal carries no attribute set.
    if scan.error is not None:
        error = worse(error, scan.error)

    if mp_reach is not None:
        if mp_reach.family in AFS:
            nh, why = check_mp_next_hop(mp_reach.family, mp_reach.next_hop, ctx)
            mp_reach.next_hop = nh
            if why is not None:
                # RFC 4271 §6.3 (a NEXT_HOP that is not a host address SHOULD NOT close the
                # session), RFC 7606 §7.11: the NLRI were parsed, so they are withdrawn.
                error = worse(error, _bad_next_hop(f"MP_REACH_NLRI next hop {why}", nh))
        mp_reach.attrs = attrs.with_next_hop(mp_reach.next_hop)

    # Mandatory well-known attributes (RFC 4271 §6.3, RFC 7606 §3(d)).
    reachable = bool(nlri) or (mp_reach is not None and bool(mp_reach.nlri))
    if reachable:
        missing = None
        if attrs is None or attrs.origin is None:
            missing = ATTR_ORIGIN
        elif attrs.as_path is None:
            missing = ATTR_AS_PATH
        elif nlri and attrs.next_hop is None:
            missing = ATTR_NEXT_HOP
        elif ctx.ibgp and attrs.local_pref is None:
            missing = ATTR_LOCAL_PREF
        if missing is not None:
            error = worse(error, _missing(missing))
    elif error is not None and error.action == Action.WITHDRAW and not _foreign(mp_reach):
        # RFC 7606 §5.2: path attributes without reachable NLRI (not an End-of-RIB): we cannot
        # be sure the NLRI were found, so anything stronger than attribute discard resets.
        error = BGPError(error.code, error.subcode, error.data, Action.RESET, error.detail)
    return Update(withdrawn, attrs, nlri, mp_reach, mp_unreach, error)


def _bad_next_hop(detail: str, nh: bytes) -> BGPError:
    return BGPError(ERR_UPDATE, UPD_INVALID_NEXT_HOP, nh, Action.WITHDRAW, detail)


def _missing(code: int) -> BGPError:
    return BGPError(
        ERR_UPDATE,
        UPD_MISSING_WELLKNOWN,
        bytes((code,)),
        Action.WITHDRAW,
        f"missing well-known attribute {code}",
    )


def _foreign(mp_reach) -> bool:
    """An MP_REACH_NLRI of a family we do not carry (its NLRI were not parsed)."""
    return mp_reach is not None and mp_reach.family not in AFS


def _decode_mp_reach(body, vs, ve, rx) -> MpReach:
    if ve - vs < 5:
        raise _mp_error("MP_REACH_NLRI too short", body[vs:ve])
    afi = (body[vs] << 8) | body[vs + 1]
    safi = body[vs + 2]
    nhlen = body[vs + 3]
    nh_end = vs + 4 + nhlen
    if nh_end + 1 > ve:
        raise _mp_error("MP_REACH_NLRI next hop overruns", body[vs:ve])
    nh = body[vs + 4 : nh_end]
    family = (afi, safi)
    spec = AFS.get(family)
    if spec is None:
        # A family we do not carry: keep the raw NLRI, nobody consumes it.
        return MpReach(afi, safi, nh, [])
    if nhlen not in spec.next_hop_lengths:
        raise _mp_error(f"next hop length {nhlen} invalid for {spec.name}", body[vs:ve])
    # One reserved octet (formerly SNPA count) follows the next hop.
    try:
        nlri = _parse_nlri(body, nh_end + 1, ve, family, rx)
    except BGPError as e:
        # RFC 4760 §7: an incorrect MP attribute is an Optional Attribute Error (3/9).
        raise _mp_error(f"MP_REACH_NLRI: {e.detail}", body[vs:ve])
    return MpReach(afi, safi, nh, nlri)


def _decode_mp_unreach(body, vs, ve, rx) -> MpUnreach:
    if ve - vs < 3:
        raise _mp_error("MP_UNREACH_NLRI too short", body[vs:ve])
    afi = (body[vs] << 8) | body[vs + 1]
    safi = body[vs + 2]
    family = (afi, safi)
    if family not in AFS:
        return MpUnreach(afi, safi, [])
    try:
        withdrawn = _parse_nlri(body, vs + 3, ve, family, rx)
    except BGPError as e:
        raise _mp_error(f"MP_UNREACH_NLRI: {e.detail}", body[vs:ve])
    return MpUnreach(afi, safi, withdrawn)


# --- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH -------------------------------------------------


class ShutdownCommunication(NamedTuple):
    """An RFC 9003 Shutdown Communication: ``text`` when it is valid, else ``invalid`` says
    why; ``raw`` holds its octets either way (for an invalid Length: all of the data)."""

    text: str | None
    raw: bytes
    invalid: str | None

    def describe(self) -> str:
        """For logs: the text quoted, or why it is invalid and its octets in hex."""
        if self.invalid is None:
            return repr(self.text)
        return f"invalid shutdown communication ({self.invalid}): {self.raw.hex()}"


@dataclass(slots=True)
class Notification:
    code: int
    subcode: int = 0
    data: bytes = b""
    type = NOTIFICATION

    @property
    def reason(self) -> str:
        return error_reason(self.code, self.subcode)

    @property
    def shutdown_communication(self) -> "ShutdownCommunication | None":
        """The RFC 9003 Shutdown Communication of a Cease 2 or 4 NOTIFICATION, valid or not;
        None when there is none (no data, or a length of 0)."""
        if self.code != ERR_CEASE or self.subcode not in (CEASE_ADMIN_SHUTDOWN, CEASE_ADMIN_RESET):
            return None
        d = self.data
        if not d or d[0] == 0:
            return None
        n = d[0]
        if 1 + n > len(d):
            # RFC 9003 §4: an invalid Length is reported, the octets kept (as a hex dump).
            return ShutdownCommunication(
                None,
                bytes(d),
                f"length octet {n} but {len(d) - 1} octets follow",
            )
        raw = bytes(d[1 : 1 + n])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return ShutdownCommunication(
                None, raw, f"not valid UTF-8 (octet {e.start}: {e.reason})"
            )
        # Octets after the communication are not part of it (RFC 9003 §2 delimits it by its
        # Length); they are left in ``data``.
        return ShutdownCommunication(text, raw, None)

    @property
    def shutdown_message(self) -> str | None:
        """The text of a valid RFC 9003 Shutdown Communication, else None (an invalid one is
        never shown as text: see :attr:`shutdown_communication`)."""
        sc = self.shutdown_communication
        return sc.text if sc is not None else None

    @classmethod
    def cease(cls, subcode: int, message: str = "") -> "Notification":
        """A Cease NOTIFICATION, with an RFC 9003 message for shutdown and reset."""
        data = b""
        if message and subcode in (CEASE_ADMIN_SHUTDOWN, CEASE_ADMIN_RESET):
            raw = message.encode("utf-8")[:255]
            # do not cut a UTF-8 sequence in half
            raw = raw.decode("utf-8", "ignore").encode("utf-8")
            data = bytes((len(raw),)) + raw
        return cls(ERR_CEASE, subcode, data)

    @classmethod
    def from_error(cls, err: BGPError) -> "Notification":
        return cls(err.code, err.subcode, err.data)

    def encode(self, ctx: Context = DEFAULT) -> bytes:
        """The NOTIFICATION, its data cut to fit ``ctx.max_size`` (4096 octets by default).

        Error data copied from the peer's input (a whole ROUTE-REFRESH for RFC 7313 7/1, an
        attribute for 3/2, 3/4, 3/5, 3/9) can be as long as the message that carried it: a
        4096-octet ROUTE-REFRESH would make a 4117-octet NOTIFICATION the peer must reject,
        and a 65535-octet one (extended messages) one that no length field can describe.
        """
        data = self.data
        room = ctx.max_size - HEADER_LEN - 2
        if len(data) > room:
            data = data[:room]
        body = bytes((self.code, self.subcode)) + data
        return _header(NOTIFICATION, len(body)) + body


def decode_notification(body: bytes) -> Notification:
    if len(body) < 2:
        raise _length_error(len(body) + HEADER_LEN)
    return Notification(body[0], body[1], bytes(body[2:]))


@dataclass(slots=True)
class Keepalive:
    type = KEEPALIVE

    def encode(self, ctx: Context = DEFAULT) -> bytes:
        return KEEPALIVE_BYTES


KEEPALIVE_BYTES = _header(KEEPALIVE, 0)


@dataclass(slots=True)
class RouteRefresh:
    afi: int
    safi: int
    subtype: int = RR_NORMAL  # RFC 7313: 0 normal, 1 BoRR, 2 EoRR
    orf: bytes = b""  # RFC 5291 ORF entries after the fixed part, kept raw (never applied)
    type = ROUTE_REFRESH

    def encode(self, ctx: Context = DEFAULT) -> bytes:
        body = self.afi.to_bytes(2, "big") + bytes((self.subtype, self.safi)) + self.orf
        return _header(ROUTE_REFRESH, len(body)) + body


def decode_route_refresh(body: bytes) -> RouteRefresh:
    """RFC 2918, RFC 7313 §5: a BoRR or EoRR (or reserved subtype) must be 4 octets long; a
    normal request may carry RFC 5291 ORF entries after them, which bgpd keeps but does not
    apply (it never advertises the ORF capability): the refresh itself is honoured."""
    if len(body) > 4 and body[2] == RR_NORMAL:
        return RouteRefresh((body[0] << 8) | body[1], body[3], RR_NORMAL, bytes(body[4:]))
    if len(body) != 4:
        raise BGPError(
            ERR_ROUTE_REFRESH,
            RR_INVALID_LENGTH,
            _header(ROUTE_REFRESH, len(body)) + body,
            Action.RESET,
            f"ROUTE-REFRESH length {len(body) + HEADER_LEN}",
        )
    return RouteRefresh((body[0] << 8) | body[1], body[3], body[2])


Message = Open | Update | Notification | Keepalive | RouteRefresh


def decode_message(msg_type: int, body: bytes, ctx: Context = DEFAULT) -> Message:
    """Decode one message body whose header :class:`bgpd.wire.framing.Framer` checked."""
    if msg_type == UPDATE:
        return decode_update(body, ctx)
    if msg_type == KEEPALIVE:
        if body:
            raise _length_error(len(body) + HEADER_LEN)
        return Keepalive()
    if msg_type == OPEN:
        return decode_open(body)
    if msg_type == NOTIFICATION:
        return decode_notification(body)
    if msg_type == ROUTE_REFRESH:
        return decode_route_refresh(body)
    raise BGPError(ERR_HEADER, HDR_BAD_TYPE, bytes((msg_type,)), Action.RESET, f"type {msg_type}")


__all__ = [
    "AFS",
    "AfSpec",
    "Keepalive",
    "Message",
    "MpReach",
    "MpUnreach",
    "Notification",
    "Open",
    "RouteRefresh",
    "ShutdownCommunication",
    "Update",
    "decode_message",
    "decode_open",
    "decode_update",
    "encode_mp_reach",
    "encode_mp_unreach",
    "field",
]

"""Malformed input: every error case of RFC 4271 §6.1-§6.3, with the RFC 7606 actions.

Each case asserts the NOTIFICATION code and subcode, the data where the RFC specifies it, and
the action: session reset (a raised :class:`BGPError` or a framing error), treat-as-withdraw
(``Update.error`` with ``Action.WITHDRAW``: nothing is reached, every announced prefix is
withdrawn) or attribute discard (the routes stay, the attribute is gone).
"""

from typing import NamedTuple

import pytest

from bgpd.wire import Action, BGPError, Context, Framer, decode_message
from bgpd.wire import prefix as pfx
from bgpd.wire.capabilities import UnknownCapability
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

W, D, R = Action.WITHDRAW, Action.DISCARD, Action.RESET
ANY = object()  # data not specified by the RFC


def h(text: str) -> bytes:
    """Annotated hex -> bytes: ``#`` comments and whitespace are dropped."""
    return bytes.fromhex(
        "".join(line.split("#", 1)[0] for line in text.splitlines()).replace(" ", "")
    )


def msg(msg_type: int, body: bytes, length: int | None = None) -> bytes:
    total = 19 + len(body) if length is None else length
    return b"\xff" * 16 + total.to_bytes(2, "big") + bytes((msg_type,)) + body


def upd(attrs: str = "", nlri: str = "18 c0a801", withdrawn: str = "") -> bytes:
    """An UPDATE from annotated hex; by default announcing 192.168.1.0/24."""
    a, n, w = h(attrs), h(nlri), h(withdrawn)
    return msg(2, len(w).to_bytes(2, "big") + w + len(a).to_bytes(2, "big") + a + n)


EBGP = Context()
IBGP = Context(ibgp=True)
AS2 = Context(as4=False)
PREFIX = pfx.from_str("192.168.1.0/24")
V6 = pfx.from_str("2001:db8:1::/48")

ORIGIN = "40 01 01 00                # ORIGIN IGP\n"
AS_PATH = "40 02 06 02 01 0000fde8    # AS_PATH: AS_SEQUENCE 65000\n"
AS_PATH2 = "40 02 04 02 01 fde8        # AS_PATH (two-octet): 65000\n"
NEXT_HOP = "40 03 04 0a000001          # NEXT_HOP 10.0.0.1\n"
LOCAL_PREF = "40 05 04 00000064          # LOCAL_PREF 100\n"
BASE = ORIGIN + AS_PATH + NEXT_HOP
MP_REACH_V6 = """
    80 0e 1c                   # MP_REACH_NLRI, length 28
    0002 01 10                 # IPv6 unicast, next hop length 16
    20010db8000000000000000000000001   # 2001:db8::1
    00                         # reserved
    30 20010db80001            # 2001:db8:1::/48
"""


def decode(wire: bytes, ctx: Context = EBGP):
    """Frame and decode one message: returns it, or raises the framing/decoding error."""
    framer = Framer(max_size=ctx.max_size)
    msgs = framer.feed(wire)
    if framer.error is not None:
        raise framer.error
    assert len(msgs) == 1 and len(framer) == 0
    return decode_message(*msgs[0], ctx)


def outcome(wire: bytes, ctx: Context = EBGP):
    """``(message or None, error or None)``."""
    try:
        m = decode(wire, ctx)
    except BGPError as e:
        assert e.action == R  # only session resets are raised
        return None, e
    return m, getattr(m, "error", None)


def check(err: BGPError | None, code: int, subcode: int, data, action: Action):
    assert err is not None, "no error"
    assert (err.code, err.subcode, err.action) == (code, subcode, action), repr(err)
    if data is not ANY:
        assert err.data.hex() == data.hex(), repr(err)


def withdrawn(m, family=IPV4_UNICAST, prefixes=(PREFIX,)):
    assert m.treat_as_withdraw
    assert m.reach() == []
    assert (family, list(prefixes)) in m.unreach()


def kept(m, family=IPV4_UNICAST, prefixes=(PREFIX,)):
    assert not m.treat_as_withdraw
    assert [(f, p) for f, _a, p in m.reach()] == [(family, list(prefixes))]


# --- RFC 4271 §6.1: message header ---------------------------------------------------------


def framing_error(data: bytes, max_size: int = 4096) -> BGPError:
    framer = Framer(max_size)
    assert framer.feed(data) == []
    assert framer.error is not None
    return framer.error


def test_connection_not_synchronized():
    wire = b"\xff" * 15 + b"\xfe" + h("0013 04")  # one marker bit wrong
    check(framing_error(wire), 1, 1, b"", R)


@pytest.mark.parametrize("length", [0, 18, 4097, 65535])
def test_bad_length(length):
    # data: the erroneous Length field
    check(framing_error(msg(2, b"", length)), 1, 2, length.to_bytes(2, "big"), R)


@pytest.mark.parametrize("msg_type", [0, 6, 255])
def test_bad_type(msg_type):
    check(framing_error(msg(msg_type, b"")), 1, 3, bytes((msg_type,)), R)


@pytest.mark.parametrize(
    "msg_type, length",
    [(1, 28), (2, 22), (3, 20), (4, 18), (5, 18)],
    ids=["open<29", "update<23", "notification<21", "keepalive<19", "route-refresh<19"],
)
def test_per_type_minimum_length(msg_type, length):
    check(framing_error(msg(msg_type, b"\x00" * 40, length)), 1, 2, length.to_bytes(2, "big"), R)


def test_keepalive_with_body():
    check(framing_error(msg(4, b"\x00")), 1, 2, (20).to_bytes(2, "big"), R)
    # the same check when the body reaches decode_message without the framer
    with pytest.raises(BGPError) as e:
        decode_message(4, b"\x00")
    check(e.value, 1, 2, (20).to_bytes(2, "big"), R)


def test_messages_before_a_header_error_are_kept():
    framer = Framer()
    out = framer.feed(msg(4, b"") + msg(9, b""))
    assert out == [(4, b"")]
    check(framer.error, 1, 3, b"\x09", R)


# --- RFC 4271 §6.2: OPEN --------------------------------------------------------------------


def open_msg(
    version="04", my_as="fde8", hold="00b4", bgp_id="0a000001", params="02 02 02 00"
) -> bytes:
    p = h(params)
    return msg(1, h(version + my_as + hold + bgp_id) + bytes((len(p),)) + p)


def test_open_valid_baseline():
    m = decode(open_msg())
    assert (m.asn, m.hold_time, m.router_id) == (65000, 180, "10.0.0.1")


def test_unsupported_version():
    with pytest.raises(BGPError) as e:
        decode(open_msg(version="03"))
    check(e.value, 2, 1, b"\x00\x04", R)  # data: the largest version we support


def test_unsupported_optional_parameter():
    with pytest.raises(BGPError) as e:
        decode(open_msg(params="01 02 0000"))  # type 1: authentication (deprecated)
    check(e.value, 2, 4, ANY, R)


@pytest.mark.parametrize("hold", [1, 2])
def test_unacceptable_hold_time(hold):
    with pytest.raises(BGPError) as e:
        decode(open_msg(hold=f"{hold:04x}"))
    check(e.value, 2, 6, ANY, R)


@pytest.mark.parametrize("hold", [0, 3, 65535])
def test_acceptable_hold_time(hold):
    assert decode(open_msg(hold=f"{hold:04x}")).hold_time == hold


def test_bad_bgp_identifier():
    with pytest.raises(BGPError) as e:
        decode(open_msg(bgp_id="00000000"))
    check(e.value, 2, 3, ANY, R)


@pytest.mark.parametrize(
    "my_as, params",
    [("0000", "02 02 02 00"), ("5ba0", "02 06 41 04 00000000")],
    ids=["my-as-0", "four-octet-as-0"],
)
def test_peer_as_zero(my_as, params):
    # RFC 7607 §2: Bad Peer AS
    with pytest.raises(BGPError) as e:
        decode(open_msg(my_as=my_as, params=params))
    check(e.value, 2, 2, ANY, R)


@pytest.mark.parametrize(
    "params",
    [
        "02 05 01 03 000100",  # multiprotocol, length 3
        "02 04 41 02 fde8",  # four-octet AS, length 2
        "02 05 40 03 00b400",  # graceful restart, length 3
        "02 05 45 03 000101",  # add-path, length 3
        "02 05 49 03 05 6868",  # FQDN: hostname length 5 overruns
        "02 03 02 00 02",  # truncated capability header
        "02 04 41 04 fde8",  # capability overruns its parameter
        "02 02 47 05",  # LLGR length 5 overruns
        "02 07 05 05 0001000102",  # extended next hop, length 5
        "02 03 06 01 00",  # extended message with a value
    ],
)
def test_malformed_capabilities(params):
    with pytest.raises(BGPError) as e:
        decode(open_msg(params=params))
    check(e.value, 2, 0, ANY, R)


def test_add_path_with_invalid_send_receive_is_ignored():
    # RFC 7911 §4: any value but 1-3 makes the capability "not understood and ignored"
    for sr in ("00", "04"):
        m = decode(open_msg(params=f"02 06 45 04 000101{sr}"))
        assert m.capabilities == (UnknownCapability(69, h(f"000101{sr}")),)


def test_optional_parameters_overrun():
    # optional parameters length 9 but only 4 octets follow
    wire = msg(1, h("04 fde8 00b4 0a000001 09 02 02 02 00"))
    with pytest.raises(BGPError) as e:
        decode(wire)
    assert e.value.action == R and e.value.code in (1, 2)


# --- RFC 4271 §6.3 and RFC 7606: UPDATE structure -------------------------------------------


def test_baseline_update_is_valid():
    m, err = outcome(upd(BASE))
    assert err is None
    kept(m)


def test_withdrawn_length_overrun():
    body = h("0010 18 c0a801 0000")  # withdrawn routes length 16, only 6 octets follow
    check(outcome(msg(2, body))[1], 3, 1, ANY, R)


def test_attribute_length_overrun():
    body = h("0000 0020") + h(BASE)  # total path attribute length 32 > 21 present
    check(outcome(msg(2, body))[1], 3, 1, ANY, R)


@pytest.mark.parametrize(
    "field, nlri, withdrawn",
    [
        ("nlri", "21 c0a80101 01", ""),  # prefix length 33
        ("nlri", "18 c0a8", ""),  # /24 with only two octets
        ("withdrawn", "", "21 c0a80101 01"),  # withdrawn prefix length 33
        ("withdrawn", "", "20 c0a801"),  # withdrawn /32 with only three octets
    ],
)
def test_invalid_network_field(field, nlri, withdrawn):
    attrs = BASE if nlri else ""
    check(outcome(upd(attrs, nlri=nlri, withdrawn=withdrawn))[1], 3, 10, ANY, R)


def test_invalid_network_field_addpath():
    ctx = Context(add_path_rx=frozenset({IPV4_UNICAST}))
    wire = upd(BASE, nlri="00000001 18 c0a8")  # prefix overruns
    check(outcome(wire, ctx)[1], 3, 10, ANY, R)
    wire = upd(BASE, nlri="000000")  # path identifier overruns
    check(outcome(wire, ctx)[1], 3, 10, ANY, R)


# --- per attribute (RFC 4271 §6.3, RFC 7606 §7) -----------------------------------------------


class Case(NamedTuple):
    id: str
    attrs: str  # the attribute block
    code: int
    subcode: int
    data: object  # bytes, or ANY
    action: Action
    ctx: Context = EBGP
    nlri: str = "18 c0a801"
    absent: str | None = None  # for DISCARD: the AttrSet field that must be empty


def A(text: str) -> bytes:
    return h(text)


CASES = [
    # ORIGIN (§7.1): treat-as-withdraw
    Case("origin-length", "40 01 02 0000" + AS_PATH + NEXT_HOP, 3, 5, A("40 01 02 0000"), W),
    Case("origin-value", "40 01 01 03" + AS_PATH + NEXT_HOP, 3, 6, A("40 01 01 03"), W),
    Case("origin-flags-optional", "c0 01 01 00" + AS_PATH + NEXT_HOP, 3, 4, A("c0010100"), W),
    Case("origin-flags-partial", "60 01 01 00" + AS_PATH + NEXT_HOP, 3, 4, A("60010100"), W),
    # AS_PATH (§7.2): treat-as-withdraw, subcode 11
    Case("as-path-segment-type", ORIGIN + "40 02 06 05 01 0000fde8" + NEXT_HOP, 3, 11, ANY, W),
    Case("as-path-overrun", ORIGIN + "40 02 06 02 02 0000fde8" + NEXT_HOP, 3, 11, ANY, W),
    Case("as-path-underrun", ORIGIN + "40 02 07 02 01 0000fde8 02" + NEXT_HOP, 3, 11, ANY, W),
    Case("as-path-zero-segment", ORIGIN + "40 02 02 02 00" + NEXT_HOP, 3, 11, ANY, W),
    Case("as-path-as0", ORIGIN + "40 02 06 02 01 00000000" + NEXT_HOP, 3, 11, ANY, W),  # 7607
    Case("as-path-2-octet-odd", ORIGIN + "40 02 05 02 01 fde8 00" + NEXT_HOP, 3, 11, ANY, W, AS2),
    Case("as-path-flags", ORIGIN + "c0 02 06 02 01 0000fde8" + NEXT_HOP, 3, 4, ANY, W),
    # NEXT_HOP (§7.3): length 3/5, value 3/8, treat-as-withdraw
    Case(
        "next-hop-length", ORIGIN + AS_PATH + "40 03 05 0a00000100", 3, 5, A("4003050a00000100"), W
    ),
    Case("next-hop-zero", ORIGIN + AS_PATH + "40 03 04 00000000", 3, 8, A("400304 00000000"), W),
    Case(
        "next-hop-multicast", ORIGIN + AS_PATH + "40 03 04 e0000001", 3, 8, A("400304e0000001"), W
    ),
    Case(
        "next-hop-broadcast", ORIGIN + AS_PATH + "40 03 04 ffffffff", 3, 8, A("400304ffffffff"), W
    ),
    Case("next-hop-flags", ORIGIN + AS_PATH + "80 03 04 0a000001", 3, 4, A("8003040a000001"), W),
    # MULTI_EXIT_DISC (§7.4)
    Case("med-length", BASE + "80 04 03 000064", 3, 5, A("800403000064"), W),
    Case("med-flags", BASE + "40 04 04 00000064", 3, 4, A("40040400000064"), W),
    Case("med-flags-partial", BASE + "a0 04 04 00000064", 3, 4, A("a0040400000064"), W),
    # LOCAL_PREF (§7.5) from an internal peer
    Case("local-pref-length", BASE + "40 05 02 0064", 3, 5, A("4005020064"), W, IBGP),
    Case("local-pref-flags", BASE + "80 05 04 00000064", 3, 4, A("80050400000064"), W, IBGP),
    # ATOMIC_AGGREGATE (§7.6): attribute discard
    Case("atomic-length", BASE + "40 06 01 00", 3, 5, A("40060100"), D, absent="atomic_aggregate"),
    Case("atomic-flags", BASE + "c0 06 00", 3, 4, A("c00600"), D, absent="atomic_aggregate"),
    # AGGREGATOR (§7.7): attribute discard
    Case("aggr-length", BASE + "c0 07 06 fde8 0a000001", 3, 5, ANY, D, absent="aggregator"),
    Case(
        "aggr-length-as2",
        ORIGIN + AS_PATH2 + NEXT_HOP + "c0 07 08 0000fde8 0a000001",
        3,
        5,
        ANY,
        D,
        AS2,
        absent="aggregator",
    ),
    Case("aggr-as0", BASE + "c0 07 08 00000000 0a000001", 3, 9, ANY, D, absent="aggregator"),
    Case("aggr-flags", BASE + "80 07 08 0000fde8 0a000001", 3, 4, ANY, D, absent="aggregator"),
    # COMMUNITIES (§7.8): treat-as-withdraw
    Case("communities-empty", BASE + "c0 08 00", 3, 5, A("c00800"), W),
    Case("communities-length", BASE + "c0 08 05 fde8006400", 3, 5, A("c00805fde8006400"), W),
    Case("communities-flags", BASE + "80 08 04 fde80064", 3, 4, A("800804fde80064"), W),
    # ORIGINATOR_ID (§7.9) from an internal peer
    Case("originator-length", BASE + LOCAL_PREF + "80 09 05 0a00000200", 3, 5, ANY, W, IBGP),
    Case("originator-flags", BASE + LOCAL_PREF + "c0 09 04 0a000002", 3, 4, ANY, W, IBGP),
    # CLUSTER_LIST (§7.10) from an internal peer
    Case("cluster-list-empty", BASE + LOCAL_PREF + "80 0a 00", 3, 5, A("800a00"), W, IBGP),
    Case("cluster-list-length", BASE + LOCAL_PREF + "80 0a 06 0a0000030a00", 3, 5, ANY, W, IBGP),
    Case("cluster-list-flags", BASE + LOCAL_PREF + "40 0a 04 0a000003", 3, 4, ANY, W, IBGP),
    # EXTENDED_COMMUNITIES (§7.14)
    Case("ext-comm-empty", BASE + "c0 10 00", 3, 5, A("c01000"), W),
    Case("ext-comm-length", BASE + "c0 10 0c 0002fde800000064 00000000", 3, 5, ANY, W),
    Case("ext-comm-flags", BASE + "40 10 08 0002fde800000064", 3, 4, ANY, W),
    # LARGE_COMMUNITY (RFC 8092 §6)
    Case("large-comm-empty", BASE + "c0 20 00", 3, 5, A("c02000"), W),
    Case("large-comm-length", BASE + "c0 20 0d 0000fde8 00000001 00000002 00", 3, 5, ANY, W),
    Case("large-comm-flags", BASE + "80 20 0c 0000fde8 00000001 00000002", 3, 4, ANY, W),
    # AS4_PATH / AS4_AGGREGATOR (RFC 6793 §6) from a two-octet peer: attribute discard
    Case("as4-path-short", ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 04 02 01 fde8", 3, 9, ANY, D, AS2),
    Case("as4-path-empty", ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 00", 3, 9, ANY, D, AS2),
    Case(
        "as4-path-overrun",
        ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 06 02 02 0000fde8",
        3,
        9,
        ANY,
        D,
        AS2,
    ),
    Case(
        "as4-path-segment-type",
        ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 06 07 01 0000fde8",
        3,
        9,
        ANY,
        D,
        AS2,
    ),
    Case(
        "as4-path-as0", ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 06 02 01 00000000", 3, 9, ANY, D, AS2
    ),
    Case(
        "as4-path-flags",
        ORIGIN + AS_PATH2 + NEXT_HOP + "40 11 06 02 01 0000fde8",
        3,
        4,
        ANY,
        D,
        AS2,
    ),
    Case(
        "as4-aggr-length",
        ORIGIN + AS_PATH2 + NEXT_HOP + "c0 07 06 5ba0 0a000001 c0 12 07 00010000 0a0000",
        3,
        9,
        ANY,
        D,
        AS2,
    ),
    Case(
        "as4-aggr-as0",
        ORIGIN + AS_PATH2 + NEXT_HOP + "c0 12 08 00000000 0a000001",
        3,
        9,
        ANY,
        D,
        AS2,
    ),
    Case(
        "as4-aggr-flags",
        ORIGIN + AS_PATH2 + NEXT_HOP + "80 12 08 00010000 0a000001",
        3,
        4,
        ANY,
        D,
        AS2,
    ),
    # unrecognized well-known (§6.3): session reset, data = the attribute
    Case("unrecognized-well-known", BASE + "40 f0 01 00", 3, 2, A("40f00100"), R),
    # missing well-known (§7606 3(d)): treat-as-withdraw, data = the type code
    Case("missing-origin", AS_PATH + NEXT_HOP, 3, 3, b"\x01", W),
    Case("missing-as-path", ORIGIN + NEXT_HOP, 3, 3, b"\x02", W),
    Case("missing-next-hop", ORIGIN + AS_PATH, 3, 3, b"\x03", W),
    Case("missing-local-pref-ibgp", BASE, 3, 3, b"\x05", W, IBGP),
    Case("no-attributes-at-all", "", 3, 3, b"\x01", W),
    # duplicates (§3(g)): later copies discarded; MP attributes: reset with 3/1
    Case("duplicate-med", BASE + "80 04 04 00000001  80 04 04 00000002", 3, 1, ANY, D),
    Case("duplicate-unknown", BASE + "c0 f1 01 00  c0 f1 01 01", 3, 1, ANY, D),
    # attribute framing (§4): treat-as-withdraw, the Total Attribute Length finds the NLRI
    Case("attribute-overruns-block", BASE + "c0 08 08 fde80064", 3, 5, ANY, W),
    Case("truncated-attribute-header", BASE + "c0 08", 3, 1, ANY, W),
    Case("truncated-extended-header", BASE + "d0 08 00", 3, 1, ANY, W),
    # several errors (§3(h)): the strongest action wins, the first error on a tie
    Case("discard-then-withdraw", BASE + "40 06 01 00  c0 08 00", 3, 5, A("c00800"), W),
    Case("two-withdraws-first-kept", "40 01 01 07" + AS_PATH + NEXT_HOP + "c0 08 00", 3, 6, ANY, W),
    Case("withdraw-then-reset", "40 01 01 07" + AS_PATH + NEXT_HOP + "40 f0 00", 3, 2, ANY, R),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_attribute_error(case: Case):
    m, err = outcome(upd(case.attrs, nlri=case.nlri), case.ctx)
    check(err, case.code, case.subcode, case.data, case.action)
    if case.action == W:
        withdrawn(m)
    elif case.action == D:
        kept(m)
        if case.absent:
            assert not getattr(m.attrs, case.absent)


# --- eBGP/iBGP rules (RFC 7606 §7.5, §7.9, §7.10) ---------------------------------------------


@pytest.mark.parametrize(
    "attr, field",
    [
        ("40 05 04 00000064", "local_pref"),
        ("40 05 02 0064", "local_pref"),  # malformed, still silently discarded
        ("80 05 04 00000064", "local_pref"),  # bad flags too
        ("80 09 04 0a000002", "originator_id"),
        ("80 09 03 0a0000", "originator_id"),
        ("80 0a 04 0a000003", "cluster_list"),
        ("80 0a 00", "cluster_list"),
    ],
)
def test_ibgp_only_attributes_from_ebgp_are_discarded(attr, field):
    m, err = outcome(upd(BASE + attr))
    assert err is None
    kept(m)
    assert not getattr(m.attrs, field)
    # and accepted from an internal peer when valid
    if attr in ("40 05 04 00000064", "80 09 04 0a000002", "80 0a 04 0a000003"):
        extra = "" if field == "local_pref" else LOCAL_PREF
        m, err = outcome(upd(BASE + extra + attr), IBGP)
        assert err is None and getattr(m.attrs, field)


def test_duplicate_keeps_first():
    m, err = outcome(upd(BASE + "80 04 04 00000001  80 04 04 00000002"))
    assert m.attrs.med == 1 and err.action == D


def test_discarded_as4_path_keeps_as_path():
    m, err = outcome(upd(ORIGIN + AS_PATH2 + NEXT_HOP + "c0 11 04 02 01 fde8"), AS2)
    assert err.action == D
    assert m.attrs.as_path == ((2, (65000,)),)


# --- MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §7, RFC 7606 §5.3, §7.11): session reset ----------


@pytest.mark.parametrize(
    "attr, subcode",
    [
        ("80 0e 04 0002 01 10", 9),  # shorter than 5 octets
        ("80 0e 0a 0002 01 05 0102030405 00", 9),  # next hop length 5 for IPv6
        ("80 0e 14 0002 01 10 20010db8000000000000000000000001", 9),  # no reserved octet
        ("80 0e 17 0002 01 10 20010db8000000000000000000000001 00 81 20", 9),  # /129
        ("80 0e 19 0002 01 10 20010db8000000000000000000000001 00 30 20010d", 9),  # overrun
        ("c0 0e 1c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001", 4),  # flags
        ("80 0f 02 0002", 9),  # MP_UNREACH shorter than 3 octets
        ("80 0f 05 0002 01 90 20", 9),  # MP_UNREACH prefix length 144
        ("80 0f 05 0002 01 30 20", 9),  # MP_UNREACH prefix overrun
        ("40 0f 03 0002 01", 4),  # MP_UNREACH flags
    ],
)
def test_mp_malformed_resets(attr, subcode):
    _m, err = outcome(upd(ORIGIN + AS_PATH + attr, nlri=""))
    check(err, 3, subcode, ANY, R)


def test_mp_reach_valid_baseline():
    m, err = outcome(upd(ORIGIN + AS_PATH + MP_REACH_V6, nlri=""))
    assert err is None
    kept(m, IPV6_UNICAST, (V6,))


@pytest.mark.parametrize(
    "attrs",
    [
        MP_REACH_V6 + MP_REACH_V6,
        "80 0f 03 0002 01  80 0f 03 0002 01",
        "80 0f 03 0002 01  80 0f 03 0001 01",  # same code, other family: still a duplicate
    ],
    ids=["mp-reach", "mp-unreach", "mp-unreach-other-family"],
)
def test_duplicate_mp_attribute_resets(attrs):
    _m, err = outcome(upd(ORIGIN + AS_PATH + attrs, nlri=""))
    check(err, 3, 1, ANY, R)


def test_mp_reach_overrunning_the_block_resets():
    # the MP_REACH_NLRI itself is cut: its NLRI are lost, treat-as-withdraw is impossible
    _m, err = outcome(upd(ORIGIN + AS_PATH + "80 0e 30 0002 01 10", nlri=""))
    check(err, 3, 5, ANY, R)


def test_withdraw_covers_mp_reach_nlri():
    # missing ORIGIN with only MP_REACH_NLRI: the IPv6 prefix is withdrawn
    m, err = outcome(upd(AS_PATH + MP_REACH_V6, nlri=""))
    check(err, 3, 3, b"\x01", W)
    withdrawn(m, IPV6_UNICAST, (V6,))


def test_next_hop_not_required_with_mp_reach_only():
    m, err = outcome(upd(ORIGIN + AS_PATH + MP_REACH_V6, nlri=""))
    assert err is None and m.attrs.next_hop is None


def test_malformed_attribute_after_mp_reach_withdraws_both_families():
    m, err = outcome(upd(MP_REACH_V6 + BASE + "c0 08 00"))
    check(err, 3, 5, ANY, W)
    assert m.reach() == []
    assert (IPV4_UNICAST, [PREFIX]) in m.unreach()
    assert (IPV6_UNICAST, [V6]) in m.unreach()


# --- RFC 7606 §5.2: attributes without reachable NLRI ------------------------------------------


@pytest.mark.parametrize(
    "attrs, subcode",
    [
        ("40 01 01 07" + AS_PATH + NEXT_HOP, 6),  # bad ORIGIN
        (BASE + "c0 08 00", 5),  # bad COMMUNITIES
        (BASE + "c0 08 08 fde80064", 5),  # attribute overruns the block
    ],
)
def test_withdraw_without_nlri_becomes_reset(attrs, subcode):
    _m, err = outcome(upd(attrs, nlri=""))
    check(err, 3, subcode, ANY, R)
    # the same with withdrawn routes only
    _m, err = outcome(upd(attrs, nlri="", withdrawn="18 c0a801"))
    check(err, 3, subcode, ANY, R)


def test_discard_without_nlri_stays_discard():
    m, err = outcome(upd(BASE + "40 06 01 00", nlri=""))
    check(err, 3, 5, ANY, D)
    assert m.reach() == [] and m.unreach() == []


def test_end_of_rib_has_no_error():
    for wire in (upd("", nlri=""), upd("80 0f 03 0002 01", nlri="")):
        m, err = outcome(wire)
        assert err is None and m.eor() is not None


# --- ROUTE-REFRESH (RFC 7313 §5) ---------------------------------------------------------------


@pytest.mark.parametrize("body", ["0001 01", "0001 01 01 00", "", "0002 01 01 0000"])
def test_route_refresh_bad_length(body):
    wire = msg(5, h(body))
    with pytest.raises(BGPError) as e:
        decode(wire)
    check(e.value, 7, 1, wire, R)  # data: the complete ROUTE-REFRESH message


# --- NOTIFICATION ---------------------------------------------------------------------------


def test_notification_minimum():
    check(framing_error(msg(3, b"\x06")), 1, 2, (20).to_bytes(2, "big"), R)
    with pytest.raises(BGPError) as e:
        decode_message(3, b"\x06")
    check(e.value, 1, 2, (20).to_bytes(2, "big"), R)


# --- next hops (bgpd.wire.nexthop): RFC 4271 §6.3, RFC 7606 §7.3 / §7.11: treat-as-withdraw ----

LOOPBACK_OK = Context(loopback_next_hop=True)
ENH = Context(extended_next_hop=frozenset({IPV4_UNICAST}))


def mp_reach(afi: int, nh: str, nlri: str) -> str:
    """An MP_REACH_NLRI attribute for ``nh`` (hex) and ``nlri`` (hex)."""
    nh_b, nlri_b = h(nh), h(nlri)
    value = afi.to_bytes(2, "big") + bytes((1, len(nh_b))) + nh_b + b"\x00" + nlri_b
    return (bytes((0x80, 14, len(value))) + value).hex()


@pytest.mark.parametrize(
    "nh, loopback",
    [
        ("00000001", False),  # 0.0.0.0/8 'this network' (RFC 1122 §3.2.1.3): before, accepted
        ("00ffffff", False),
        ("7f000001", True),  # 127/8 loopback (RFC 1122 §3.2.1.3(g)): before, accepted
        ("7f0a0b0c", True),
        ("e0000001", False),  # multicast
        ("efffffff", False),
        ("f0000001", False),  # 240/4 reserved
        ("ffffffff", False),  # limited broadcast
    ],
)
@pytest.mark.parametrize("ctx", [EBGP, IBGP], ids=["ebgp", "ibgp"])
def test_next_hop_classes_are_treat_as_withdraw(nh, loopback, ctx):
    extra = LOCAL_PREF if ctx.ibgp else ""
    attr = f"40 03 04 {nh}"
    m, err = outcome(upd(ORIGIN + AS_PATH + attr + extra), ctx)
    check(err, 3, 8, A(attr), W)
    withdrawn(m)
    # from a peer of the same host (a session between loopback addresses), 127/8 is usable
    ok_ctx = Context(ibgp=ctx.ibgp, loopback_next_hop=True)
    m, err = outcome(upd(ORIGIN + AS_PATH + attr + extra), ok_ctx)
    if loopback:
        assert err is None
        kept(m)
    else:
        check(err, 3, 8, A(attr), W)


@pytest.mark.parametrize("nh", ["01000000", "7e000001", "80000001", "dfffffff", "0a000001"])
def test_usable_next_hops(nh):
    m, err = outcome(upd(ORIGIN + AS_PATH + f"40 03 04 {nh}"))
    assert err is None
    kept(m)


V6_NLRI = "30 20010db80001"  # 2001:db8:1::/48
V4_NLRI = "18 c0a801"  # 192.168.1.0/24
LL = "fe800000000000000000000000000001"
GLOBAL6 = "20010db8000000000000000000000001"


@pytest.mark.parametrize(
    "afi, nh, nlri, ctx",
    [
        (2, "00" * 16, V6_NLRI, EBGP),  # ::
        (2, "00" * 15 + "01", V6_NLRI, EBGP),  # ::1
        (2, "ff020000000000000000000000000001", V6_NLRI, EBGP),  # ff02::1
        (2, "ff02000000000000000000000000000" + "1" + LL, V6_NLRI, EBGP),  # multicast + LL
        (2, "00" * 15 + "01" + LL, V6_NLRI, IBGP),  # ::1 + LL
        (2, "00000000000000000000ffff7f000001", V6_NLRI, EBGP),  # ::ffff:127.0.0.1
        (2, "00000000000000000000ffffe0000001", V6_NLRI, LOOPBACK_OK),  # ::ffff:224.0.0.1
        (2, "00000000000000000000ffff00000000", V6_NLRI, EBGP),  # ::ffff:0.0.0.0
        (1, "7f000001", V4_NLRI, EBGP),  # an IPv4 next hop in MP_REACH_NLRI: the same rules
        (1, "f0000001", V4_NLRI, EBGP),
        (1, "00" * 15 + "01", V4_NLRI, ENH),  # RFC 8950, ::1
        (1, GLOBAL6, V4_NLRI, EBGP),  # RFC 8950 next hop, capability not negotiated
    ],
)
def test_mp_next_hop_classes_are_treat_as_withdraw(afi, nh, nlri, ctx):
    """Before: accepted (the MP_REACH_NLRI next hop was not checked at all)."""
    extra = LOCAL_PREF if ctx.ibgp else ""
    m, err = outcome(upd(ORIGIN + AS_PATH + extra + mp_reach(afi, nh, nlri), nlri=""), ctx)
    family = (afi, 1)
    nh_b = h(nh)
    check(err, 3, 8, nh_b if len(nh_b) != 32 or nh_b[16:] == h(LL) else nh_b[:16], W)
    withdrawn(m, family, (pfx.from_str("2001:db8:1::/48" if afi == 2 else "192.168.1.0/24"),))


@pytest.mark.parametrize(
    "afi, nh, nlri, ctx, expect",
    [
        (2, GLOBAL6, V6_NLRI, EBGP, GLOBAL6),
        (2, GLOBAL6 + LL, V6_NLRI, EBGP, GLOBAL6 + LL),
        (2, LL, V6_NLRI, EBGP, LL),  # link-local only: unnumbered fabrics (RFC 2545 §3 aside)
        (2, LL + LL, V6_NLRI, EBGP, LL + LL),  # FRR's unnumbered form
        (2, "00" * 16 + LL, V6_NLRI, EBGP, "00" * 16 + LL),  # :: + link-local: the LL is used
        (2, GLOBAL6 + GLOBAL6, V6_NLRI, EBGP, GLOBAL6),  # second not link-local: ignored
        (2, GLOBAL6 + "00" * 16, V6_NLRI, EBGP, GLOBAL6),
        (2, "00" * 15 + "01", V6_NLRI, LOOPBACK_OK, "00" * 15 + "01"),
        (2, "00000000000000000000ffff7f000001", V6_NLRI, LOOPBACK_OK, None),
        (2, "00000000000000000000ffff0a000001", V6_NLRI, EBGP, None),  # ::ffff:10.0.0.1
        (1, GLOBAL6, V4_NLRI, ENH, GLOBAL6),  # RFC 8950 negotiated
        (1, GLOBAL6 + LL, V4_NLRI, ENH, GLOBAL6 + LL),
        (1, "0a000001", V4_NLRI, EBGP, "0a000001"),
    ],
)
def test_usable_mp_next_hops(afi, nh, nlri, ctx, expect):
    m, err = outcome(upd(ORIGIN + AS_PATH + mp_reach(afi, nh, nlri), nlri=""), ctx)
    assert err is None
    assert m.mp_reach.next_hop == h(expect if expect is not None else nh)
    assert m.mp_reach.attrs.next_hop == m.mp_reach.next_hop
    assert m.reach()


def test_next_hop_attribute_is_checked_with_mp_reach_only():
    """A bad NEXT_HOP beside MP_REACH_NLRI only (no IPv4 NLRI) still withdraws: RFC 4760 §3 says
    to ignore such a NEXT_HOP, but it is malformed, and bgpd does not keep a malformed
    attribute's UPDATE (the same as before this change, for multicast ones)."""
    m, err = outcome(upd(ORIGIN + AS_PATH + "40 03 04 e0000001" + MP_REACH_V6, nlri=""))
    check(err, 3, 8, ANY, W)
    withdrawn(m, IPV6_UNICAST, (V6,))


def test_sendable_next_hops():
    """What the export side may choose (bgpd.wire.nexthop.sendable): an IPv6 next hop for IPv4
    routes only with RFC 8950 negotiated."""
    from bgpd.wire.nexthop import sendable

    v4, g6, ll = h("0a000001"), h(GLOBAL6), h(LL)
    assert sendable(IPV4_UNICAST, v4, EBGP)
    assert not sendable(IPV4_UNICAST, g6, EBGP)
    assert sendable(IPV4_UNICAST, g6, ENH) and sendable(IPV4_UNICAST, g6 + ll, ENH)
    assert sendable(IPV6_UNICAST, g6, EBGP) and sendable(IPV6_UNICAST, g6 + ll, EBGP)
    assert not sendable(IPV6_UNICAST, v4, EBGP)


def test_rfc8950_routes_round_trip_through_the_packer():
    """IPv4 NLRI over a 32-octet IPv6 next hop: packed into MP_REACH_NLRI (AFI 1), decoded back
    with the same next hop when the capability was negotiated, withdrawn when it was not."""
    from bgpd.wire import AttrSet, pack_announce

    attrs = AttrSet(origin=0, as_path=((2, (65001,)),), next_hop=h(GLOBAL6 + LL))
    [wire] = pack_announce(IPV4_UNICAST, attrs, [PREFIX], ENH)
    m = decode(wire, ENH)
    assert m.error is None and m.mp_reach.family == IPV4_UNICAST
    assert [(f, a.next_hop, p) for f, a, p in m.reach()] == [
        (IPV4_UNICAST, h(GLOBAL6 + LL), [PREFIX])
    ]
    m = decode(wire, EBGP)
    check(m.error, 3, 8, ANY, W)
    withdrawn(m)

"""The rtnetlink codec and the host-route filters, without a kernel."""

import ipaddress
import struct

import pytest

from bgpd.kernel import InterfaceFilter, PrefixFilter
from bgpd.kernel.netlink import (
    AF_INET,
    AF_INET6,
    NLM_F_ACK_TLVS,
    NLM_F_CAPPED,
    NLMSG_ERROR,
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTN_BLACKHOLE,
    RTN_UNICAST,
    _bpf_ignore_pid,
    dump_request,
    encode_route,
    iter_messages,
    parse_addr,
    parse_error,
    parse_link,
    parse_route,
    wire_prefix,
)
from bgpd.wire import prefix as pfx


def a(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def p(text: str) -> bytes:
    return pfx.from_network(ipaddress.ip_network(text))


def roundtrip(op, family, dst, rtype, metric, hops, table=254, proto=186):
    msg = encode_route(op, 7, 1, family, dst, table, proto, rtype, metric, hops)
    ((typ, _flags, seq, _pid, a_, b_),) = list(iter_messages(msg))
    assert (typ, seq) == (op, 7)
    return parse_route(msg, a_, b_)


@pytest.mark.parametrize(
    "family, dst, rtype, hops",
    [
        (AF_INET, p("10.244.1.0/26"), RTN_UNICAST, ((a("10.0.0.2"), 3),)),
        (AF_INET, p("0.0.0.0/0"), RTN_UNICAST, ((a("10.0.0.2"), 3),)),
        (AF_INET, p("10.1.2.3/32"), RTN_UNICAST, ((None, 4),)),
        (AF_INET, p("10.9.0.0/16"), RTN_UNICAST, ((a("10.0.0.2"), 3), (a("10.1.0.2"), 4))),
        (AF_INET, p("10.244.12.0/26"), RTN_BLACKHOLE, ()),
        (AF_INET6, p("2001:db8::/32"), RTN_UNICAST, ((a("fe80::1"), 2),)),
        (
            AF_INET6,
            p("2001:db8:1::/48"),
            RTN_UNICAST,
            ((a("2001:db8::1"), 2), (a("2001:db8::2"), 5)),
        ),
    ],
)
def test_route_roundtrip(family, dst, rtype, hops):
    r = roundtrip(RTM_NEWROUTE, family, dst, rtype, 1024, hops, table=1000)
    assert (r.family, r.dst, r.type, r.metric, r.nexthops, r.table, r.protocol) == (
        family,
        dst,
        rtype,
        1024,
        hops,
        1000,
        186,
    )
    # a delete names the route only: no next hops
    d = roundtrip(RTM_DELROUTE, family, dst, rtype, 1024, hops)
    assert (d.dst, d.nexthops, d.metric, d.protocol) == (dst, (), 1024, 186)


def test_parse_route_skips_other_protocols_without_decoding():
    msg = encode_route(RTM_NEWROUTE, 1, 1, AF_INET, p("10.0.0.0/8"), 254, 3, 1, 0, ())
    ((_t, _f, _s, _p, x, y),) = list(iter_messages(msg))
    assert parse_route(msg, x, y, 186) is None
    assert parse_route(msg, x, y, 3).protocol == 3


def test_wire_prefix_clears_host_bits():
    assert wire_prefix(a("10.1.2.3"), 20) == p("10.1.0.0/20")
    assert wire_prefix(a("10.1.2.3"), 0) == b"\x00"
    assert wire_prefix(a("2001:db8::1"), 127) == p("2001:db8::/127")


def test_dump_request_filters_routes_by_table_and_protocol():
    msg = dump_request(26, 5, AF_INET, 1000, 186)
    ((typ, flags, seq, _pid, x, y),) = list(iter_messages(msg))
    assert (typ, flags & 0x300, seq) == (26, 0x300, 5)
    assert msg[x + 4] == 0 and msg[x + 5] == 186  # rtm_table 0 (RTA_TABLE carries 1000)


def _error_msg(code: int, seq: int, text: str | None) -> bytes:
    inner = struct.pack("=IHHII", 40, RTM_NEWROUTE, 1, seq, 0)
    body = struct.pack("=i", -code) + inner
    flags = NLM_F_CAPPED
    if text is not None:
        t = text.encode() + b"\0"
        attr = struct.pack("=HH", 4 + len(t), 1) + t
        body += attr + b"\0" * ((-len(attr)) % 4)
        flags |= NLM_F_ACK_TLVS
    return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, flags, seq, 0) + body


def test_parse_error_with_and_without_extended_ack():
    for text in ("Nexthop device is not up", None):
        msg = _error_msg(19, 42, text)
        ((typ, flags, _s, _p, x, y),) = list(iter_messages(msg))
        assert typ == NLMSG_ERROR
        assert parse_error(msg, x, y, flags) == (19, 42, text or "")


def test_parse_link_and_addr():
    name = b"eth0\0"
    attr = struct.pack("=HH", 4 + len(name), 3) + name + b"\0" * 3
    link = struct.pack("=BxHiII", 0, 1, 7, 0x10043, 0) + attr
    assert parse_link(link, 0, len(link)) == (7, "eth0", 0x10043)
    addr_attrs = struct.pack("=HH", 8, 2) + a("10.0.0.1") + struct.pack("=HH", 8, 1) + a("10.0.0.2")
    addr = struct.pack("=BBBBI", AF_INET, 30, 0, 0, 7) + addr_attrs
    m = parse_addr(addr, 0, len(addr))
    assert (m.index, m.prefixlen, m.local, m.address) == (7, 30, a("10.0.0.1"), a("10.0.0.2"))


def test_bpf_program_drops_our_pid_only():
    prog = _bpf_ignore_pid(0x01020304)
    insns = [struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8)]
    assert insns[0] == (0x20, 0, 0, 12)  # load nlmsg_pid
    assert insns[1][0] == 0x15 and insns[1][3] == int.from_bytes(
        struct.pack("=I", 0x01020304), "big"
    )
    assert insns[2] == (0x06, 0, 0, 0) and insns[3] == (0x06, 0, 0, 0xFFFFFFFF)


def test_prefix_filter():
    f = PrefixFilter(["10.244.0.0/16 le 32", "192.0.2.0/24", "2001:db8::/32 ge 48 le 64"])
    assert f(AF_INET, p("10.244.0.0/16"))
    assert f(AF_INET, p("10.244.12.0/26"))
    assert f(AF_INET, p("10.244.12.7/32"))
    assert not f(AF_INET, p("10.245.0.0/16"))
    assert not f(AF_INET, p("10.0.0.0/8"))
    assert f(AF_INET, p("192.0.2.0/24")) and not f(AF_INET, p("192.0.2.0/25"))
    assert f(AF_INET6, p("2001:db8:1::/48")) and not f(AF_INET6, p("2001:db8::/32"))
    assert not f(AF_INET6, p("2001:db8:1:2:3::/80"))
    assert PrefixFilter(["0.0.0.0/0 le 32"])(AF_INET, p("0.0.0.0/0"))
    with pytest.raises(ValueError):
        PrefixFilter(["10.0.0.0/8 le 7"])


def test_interface_filter_first_match_wins():
    f = InterfaceFilter(["-cali*", "-kube-ipvs*", "*"])
    assert f("eth0") and f("tunl0")
    assert not f("cali1234") and not f("kube-ipvs0")
    only = InterfaceFilter(["eth*"])
    assert only("eth1") and not only("ens3")
    excl = InterfaceFilter(["-cali*"])  # exclusions only: an implicit "*" at the end
    assert excl("eth0") and not excl("calia")
    assert not f(None)

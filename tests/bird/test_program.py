"""The filter programs over bgpd's routes: what the daemon relies on.

The semantics themselves are pinned against BIRD in test_filter_oracle.py and
test_calico_oracle.py; here are the parts BIRD cannot show: the AttrSet results (interned,
the same object when nothing changed), the per-set cache of attr-only programs, the fork's
``krt_tunnel``, IPv6 next hops, errors that never escape, and import-versus-export ``unset``.
"""

from __future__ import annotations

import logging

import pytest

from bgpd.bird import BirdError, RouteView, compile_filter, load
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE
from bgpd.wire.prefix import from_str

H = "router id 10.192.0.2;\nprotocol device {}\n"


def program(tmp_path, body: str, defs: str = "", ipv6: bool = False, export: bool = True):
    path = tmp_path / ("bird6.cfg" if ipv6 else "bird.cfg")
    path.write_text(H + defs + f"\nfilter t {{\n{body}\n}}\n")
    return compile_filter(load(str(path), ipv6=ipv6).filters["t"], ipv6, export)


def view(prefix="10.1.0.0/24", source="bgp", **kw) -> RouteView:
    attrs = kw.pop("attrs", None) or intern(AttrSet(origin=0, as_path=(), local_pref=100))
    return RouteView(from_str(prefix), attrs, source, **kw)


def test_unchanged_route_keeps_its_attribute_set(tmp_path):
    p = program(tmp_path, "if net ~ 10.0.0.0/8 then accept; reject;")
    v = view()
    r = p.run(v)
    assert r.accepted and r.attrs is v.attrs and r.error is None


def test_changes_give_an_interned_set(tmp_path):
    p = program(tmp_path, "bgp_local_pref = 7; bgp_community.add((65000, 1)); accept;")
    a = p.run(view("10.1.0.0/24"))
    b = p.run(view("10.2.0.0/24"))
    assert a.attrs is b.attrs  # one interned set for both routes
    assert a.attrs.local_pref == 7 and a.attrs.communities == ((65000 << 16) | 1,)
    assert a.attrs == intern(
        AttrSet(origin=0, as_path=(), local_pref=7, communities=(65000 << 16 | 1,))
    )


def test_setting_the_same_value_changes_nothing(tmp_path):
    p = program(tmp_path, "bgp_local_pref = 100; accept;")
    v = view()
    assert p.run(v).attrs is v.attrs


def test_attr_only_programs_cache_per_set(tmp_path):
    p = program(tmp_path, "if bgp_local_pref > 2147482623 then preference = 200; accept;")
    assert p.attr_only
    high = intern(AttrSet(local_pref=2147483000))
    r1 = p.run(view(attrs=high))
    assert ("bird", p.uid) in high.cache
    r2 = p.run(view("10.9.0.0/16", attrs=high, preference=100))
    assert r1.preference == r2.preference == 200
    low = p.run(view(attrs=intern(AttrSet(local_pref=5)), preference=170))
    assert low.preference == 170  # unchanged: the route's own


def test_reading_the_route_is_not_attr_only(tmp_path):
    for body in (
        "if net.len = 24 then accept; reject;",
        "if krt_metric < 5 then accept; reject;",
        'if ifname ~ "cali*" then reject; accept;',
        "if source = RTS_BGP then accept; reject;",
        "if preference = 100 then accept; reject;",
    ):
        assert not program(tmp_path, body).attr_only, body


def test_runtime_error_drops_the_route_and_names_file_and_line(tmp_path, caplog):
    p = program(tmp_path, "bgp_med = 1 - bgp_med;\naccept;")
    with caplog.at_level(logging.ERROR, logger="bgpd.bird.filter"):
        r = p.run(view())
    assert not r.accepted
    assert r.error.endswith(":5: Can't operate with values of incompatible types")
    assert r.error.startswith(str(tmp_path))
    assert "Can't operate" in caplog.text


def test_fall_off_the_end_is_an_error(tmp_path):
    r = program(tmp_path, "if net ~ 1.0.0.0/8 then accept;").run(view())
    assert not r.accepted and "did not return accept nor reject" in r.error


def test_reject_is_not_an_error(tmp_path):
    r = program(tmp_path, "reject;").run(view())
    assert not r.accepted and r.error is None


def test_temporaries_come_back(tmp_path):
    p = program(tmp_path, "krt_metric = 2147483647 - bgp_local_pref; preference = 200; accept;")
    r = p.run(view())
    assert (r.krt_metric, r.preference) == (2147483547, 200)
    assert r.attrs.local_pref == 100  # krt_metric is not a BGP attribute


def test_kernel_route_metric_and_interface(tmp_path):
    p = program(tmp_path, 'if ifname ~ "cali*" && krt_metric < 1024 then accept; reject;')
    assert p.run(view("10.0.0.1/32", "kernel", ifname="cali12", krt_metric=512)).accepted
    assert not p.run(view("10.0.0.1/32", "kernel", ifname="cali12", krt_metric=1024)).accepted
    assert not p.run(view("10.0.0.1/32", "kernel", ifname="eth0", krt_metric=5)).accepted


def test_krt_tunnel_of_the_fork(tmp_path):
    body = (
        'if (defined(bgp_next_hop)&&(bgp_next_hop ~ 10.192.0.0/16)) then krt_tunnel=""; '
        'else krt_tunnel="tunl0"; accept;'
    )
    p = program(tmp_path, body)
    same = intern(AttrSet(next_hop=bytes((10, 192, 0, 3))))
    other = intern(AttrSet(next_hop=bytes((10, 193, 0, 3))))
    assert p.run(view(attrs=same)).krt_tunnel == ""
    assert p.run(view(attrs=other)).krt_tunnel == "tunl0"
    assert p.run(view(attrs=same)).temps == {"krt_tunnel": ""}
    path = tmp_path / "bird.cfg"
    with pytest.raises(BirdError, match="You may set only variables"):
        load(str(path), fork=False)  # upstream BIRD has no krt_tunnel


def test_bgp_path_and_communities(tmp_path):
    p = program(
        tmp_path,
        "bgp_path.prepend(65000); bgp_large_community.add((1, 2, 3)); "
        "bgp_community.delete([(65000, *)]); accept;",
    )
    a = intern(AttrSet(as_path=((AS_SEQUENCE, (1, 2)),), communities=((65000 << 16) | 5, 7)))
    r = p.run(view(attrs=a))
    assert r.attrs.as_path == ((AS_SEQUENCE, (65000, 1, 2)),)
    assert r.attrs.large_communities == ((1, 2, 3),)
    assert r.attrs.communities == (7,)


def test_ipv6(tmp_path):
    p = program(
        tmp_path,
        "if net ~ fd00:10:244::/48 && bgp_next_hop ~ fd00:10:192::/64 then "
        "{ bgp_next_hop = fd00::1; accept; } reject;",
        ipv6=True,
    )
    nh = bytes.fromhex("fd000010019200000000000000000003") + bytes.fromhex(
        "fe80" + "00" * 13 + "01"
    )
    r = p.run(view("fd00:10:244:1::/64", attrs=intern(AttrSet(next_hop=nh)), ipv6=True))
    assert r.accepted
    assert r.attrs.next_hop == bytes.fromhex("fd00" + "00" * 13 + "01")


def test_unset_in_import_and_export(tmp_path):
    body = "unset(bgp_local_pref); if defined(bgp_local_pref) then { bgp_med = 1; accept; } accept;"
    imp = program(tmp_path, body, export=False).run(view())
    exp = program(tmp_path, body, export=True).run(view())
    # import filters drop it for good; export filters (BIRD's FF_FORCE_TMPATTR) still read the
    # route's value after unset(), and the result has no LOCAL_PREF either way
    assert imp.attrs.local_pref is None and imp.attrs.med is None
    assert exp.attrs.local_pref is None and exp.attrs.med == 1


def test_accept_in_a_function_ends_the_filter(tmp_path):
    defs = "function f(bool b) { if b then accept; bgp_med = 5; }\n"
    p = program(tmp_path, "f(net.len = 24); bgp_med = 9; accept;", defs)
    assert p.run(view("10.1.0.0/24")).attrs.med is None
    assert p.run(view("10.0.0.0/8")).attrs.med == 9


def test_a_function_calling_itself_does_nothing(tmp_path):
    """BIRD binds a call inside a function's own body before the body exists."""
    defs = "function f() { bgp_med = 3; f(); }\n"
    assert program(tmp_path, "f(); accept;", defs).run(view()).attrs.med == 3


def test_constants(tmp_path):
    defs = "define METRIC = 1024;\ndefine POOL = 192.168.0.0/16;\n"
    p = program(tmp_path, "if net ~ POOL then { krt_metric = METRIC - 1; accept; } reject;", defs)
    assert p.run(view("192.168.1.0/26")).krt_metric == 1023


def test_quitbird_rejects_instead_of_dying(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="bgpd.bird.filter"):
        r = program(tmp_path, 'print "route ", net; quitbird;').run(view())
    assert not r.accepted
    assert "route 10.1.0.0/24" in caplog.text and "quitbird" in caplog.text


def test_static_attribute_changes_are_reported(tmp_path):
    r = program(tmp_path, "dest = RTD_BLACKHOLE; accept;").run(view())
    assert r.accepted and r.statics["dest"] == 2


def test_the_view_defaults():
    v = RouteView(from_str("10.0.0.0/8"), intern(AttrSet()), "kernel")
    assert (v.preference, v.ifname, v.krt_metric, v.dest) == (10, "", None, "router")
    assert RouteView(from_str("10.0.0.0/8"), intern(AttrSet()), "direct").preference == 240


def test_an_import_filters_preference_stays_with_the_route(tmp_path):
    """Calico's import filter gives high-LOCAL_PREF routes preference 200: the route keeps it
    (on its AttrSet where AttrSet has a preference field), and a later run sees it."""
    p = program(
        tmp_path,
        "if bgp_local_pref > 2147482623 then preference = 200; accept;",
        export=False,
    )
    v = p.run(view(attrs=intern(AttrSet(local_pref=2147483600))))
    assert v.preference == 200
    if "preference" in AttrSet.__slots__ or hasattr(v.attrs, "preference"):
        assert v.attrs.preference == 200
        assert RouteView(from_str("10.0.0.0/8"), v.attrs, "bgp").preference == 200

"""The parsed model: protocol names and order, templates, defaults."""

from __future__ import annotations

from bgpd.bird import load
from bgpd.bird.model import REJECT


def _load(tmp_path, text: str, ipv6: bool = False):
    path = tmp_path / "bird.cfg"
    path.write_text(text)
    return load(str(path), ipv6=ipv6)


def test_default_names_as_bird_numbers_them(tmp_path):
    c = _load(
        tmp_path,
        "router id 1.2.3.4;\n"
        "template kernel {}\n"  # a template takes kernel1
        "protocol kernel from kernel1 { learn; }\n"  # kernel2
        "function static1() {}\n"  # the name static1 is taken: static2
        "protocol static {}\nprotocol static st1 {}\nprotocol static {}\n"
        "protocol device {}\nprotocol direct {}\n",
    )
    assert [(p.kind, p.name) for p in c.protocols] == [
        ("kernel", "kernel2"),
        ("static", "static2"),
        ("static", "st1"),
        ("static", "static3"),
        ("device", "device1"),
        ("direct", "direct1"),
    ]
    assert c.protocols[0].parent == "kernel1" and c.protocols[0].learn


def test_templates_copy_and_protocols_override(tmp_path):
    c = _load(
        tmp_path,
        "router id 1.2.3.4;\nprotocol device {}\n"
        "filter f { accept; }\n"
        'template bgp t { local as 65000; hold time 90; export filter f; password "a";\n'
        "  graceful restart; }\n"
        'protocol bgp Mesh_10_0_0_2 from t { neighbor 10.0.0.2 as 65000; password "b"; }\n'
        "protocol bgp Mesh_10_0_0_3 from t { neighbor 10.0.0.3 as 65000; export none; }\n"
        'template direct d { interface -"cali*"; }\n'
        'protocol direct from d { interface "*"; }\n'
        "template static st { route 10.0.0.0/8 blackhole; }\n"
        "protocol static from st { route 11.0.0.0/8 blackhole; }\n",
    )
    a, b = c.protocol("Mesh_10_0_0_2"), c.protocol("Mesh_10_0_0_3")
    assert (a.local_as, a.hold_time, a.password, a.graceful_restart) == (65000, 90, "b", True)
    assert b.password == "a" and b.export_filter == REJECT
    assert a.export_filter is c.filters["f"]  # shared, as BIRD shares it
    d = c.protocol("direct1")
    assert [p.nodes for p in d.interfaces] == [[(False, "cali*", None)], [(True, "*", None)]]
    # BIRD's iface_patt_find: a negative match only ends its own statement; "*" then takes it
    assert d.accepts("cali1")
    assert len(c.templates["d"].interfaces) == 1  # the template keeps its own list
    s = c.protocol("static1")
    assert [str(r.length) for r in s.routes] == ["8", "8"]
    assert len(c.templates["st"].routes) == 1


def test_bird_defaults(tmp_path):
    c = _load(
        tmp_path,
        "router id 1.2.3.4;\nprotocol device {}\nprotocol kernel {}\n"
        "protocol bgp p { local as 1; neighbor 10.0.0.1 as 2; }\n",
    )
    k, p = c.protocol("kernel1"), c.protocol("p")
    assert (k.persist, k.learn, k.scan_time, k.merge_paths, k.kernel_table) == (
        False,
        False,
        60,
        0,
        254,
    )
    assert (p.hold_time, p.connect_retry_time, p.connect_delay_time, p.error_wait_time) == (
        240,
        120,
        5,
        (60, 300),
    )
    assert p.effective_multihop == 0 and p.import_filter is None and p.export_filter == REJECT
    assert (p.graceful_restart, p.add_paths, p.preference) == ("aware", "", 100)
    assert c.gr_wait == 240 and c.listen_port == 179


def test_direct_interface_patterns():
    from bgpd.bird.model import Direct, IfacePattern

    d = Direct("direct1", False, "f", 1)
    assert d.accepts("anything")  # no pattern: every interface
    p = IfacePattern()
    p.nodes = [(False, "cali*", None), (False, "kube-ipvs*", None), (True, "*", None)]
    d.interfaces = [p]
    assert not d.accepts("cali12") and not d.accepts("kube-ipvs0")
    assert d.accepts("eth0") and d.accepts("tunl0")
    p.nodes = [(True, "-eth?", None)]  # a '-' inside the string negates too
    assert not d.accepts("eth0")

"""bgpd.config: parsing, defaults, every validation error (file + key + reason), load()."""

import dataclasses
import re
from pathlib import Path

import pytest

from bgpd.config import (
    DEFAULT_CONTROL_SOCKET,
    AddPath,
    Config,
    ConfigError,
    Listen,
    Neighbor,
    load,
    loads,
    parse,
)

EXAMPLE = """
router_id: 192.0.2.10
asn: 64512
listen: [{address: 192.0.2.10, port: 179}]
control_socket: /run/bgpd/bgpd.sock
networks: [10.244.12.0/26, "2001:db8:12::/64"]
hold_time: 90
keepalive: null
connect_retry: 30
neighbors:
  - address: 192.0.2.1
    asn: 65001
    port: 179
    passive: false
    source_address: 192.0.2.10
    hold_time: 90
    keepalive: 30
    connect_retry: 30
    delay_open: 0
    password: s3cret
    ttl_security: 1
    families: [ipv4, ipv6]
    description: "tor-1"
    shutdown: false
    add_path: {send: false, receive: false}
    route_refresh: true
    extended_message: true
    four_octet_as: true
    local_as: null
    next_hop_self: null
  - address: 2001:db8::2
    asn: 64512
    rr_client: true
    multihop: 64
    add_path: {ipv4: {send: true, receive: true}}
"""


def base(**top) -> dict:
    data = {"router_id": "192.0.2.10", "asn": 64512}
    data.update(top)
    return data


def with_neighbor(**fields) -> dict:
    n = {"address": "192.0.2.1", "asn": 65001}
    n.update(fields)
    return base(neighbors=[n])


def error_of(data, file="test.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data, file)
    e = info.value
    assert str(e) == (f"{file}: {e.key}: {e.reason}" if e.key else f"{file}: {e.reason}")
    return e


# --- a good config --------------------------------------------------------------------------


def test_example_parses():
    c = loads(EXAMPLE, "bgpd.yaml")
    assert c.router_id == "192.0.2.10"
    assert c.asn == 64512
    assert c.listen == (Listen(address="192.0.2.10", port=179),)
    assert c.networks == ("10.244.12.0/26", "2001:db8:12::/64")
    n1, n2 = c.neighbors
    assert n1.address == "192.0.2.1"
    assert n1.password == "s3cret"
    assert "s3cret" not in repr(n1)
    assert n1.ttl_security == 1
    assert n1.keepalive == 30
    assert n1.add_path == AddPath()
    assert n2.address == "2001:db8::2"
    assert n2.add_path == AddPath(send=frozenset({"ipv4"}), receive=frozenset({"ipv4"}))
    assert (n2.add_path.mode("ipv4"), n2.add_path.mode("ipv6")) == ("both", None)
    assert n2.multihop == 64
    assert n2.rr_client and not n1.rr_client
    assert n2.ibgp(c.asn) and not n1.ibgp(c.asn)
    assert c.neighbor("2001:DB8:0::2") is n2
    assert c.neighbor("192.0.2.99") is None
    assert c.neighbor("not an address") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.asn = 1


def test_defaults():
    c = parse(base(neighbors=[{"address": "192.0.2.1", "asn": 65001}]))
    assert c.listen == ()
    assert c.control_socket == DEFAULT_CONTROL_SOCKET
    assert c.networks == ()
    assert (c.hold_time, c.keepalive, c.connect_retry) == (90, None, 30)
    (n,) = c.neighbors
    assert n == Neighbor(address="192.0.2.1", asn=65001)
    assert (n.port, n.passive, n.source_address) == (179, False, None)
    assert (n.hold_time, n.keepalive, n.connect_retry, n.delay_open) == (90, None, 30, 0)
    assert n.keepalive_time == 30
    assert (n.password, n.ttl_security, n.multihop) == (None, None, None)
    assert n.families == ("ipv4", "ipv6")
    assert (n.description, n.shutdown) == (None, False)
    assert n.add_path == AddPath(frozenset(), frozenset())
    assert (n.route_refresh, n.extended_message, n.four_octet_as) == (True, True, True)
    assert (n.local_as, n.next_hop_self, n.rr_client) == (None, None, False)
    assert c.cluster_id is None
    assert n.family == "ipv4"
    assert Listen(address="::").port == 179


def test_neighbor_timers_inherit_from_top_level():
    data = base(
        hold_time=30,
        keepalive=10,
        connect_retry=5,
        neighbors=[
            {"address": "192.0.2.1", "asn": 1},
            {"address": "192.0.2.2", "asn": 1, "hold_time": 60},
        ],
    )
    n1, n2 = parse(data).neighbors
    assert (n1.hold_time, n1.keepalive, n1.connect_retry) == (30, 10, 5)
    assert (n2.hold_time, n2.keepalive, n2.connect_retry) == (60, 10, 5)


def test_empty_lists_and_null_sections():
    c = parse(base(neighbors=None, listen=None, networks=None))
    assert (c.neighbors, c.listen, c.networks) == ((), (), ())


def test_add_path_shorthand_covers_the_neighbor_families():
    (n,) = parse(with_neighbor(families=["ipv6"], add_path={"send": True})).neighbors
    assert n.add_path == AddPath(send=frozenset({"ipv6"}), receive=frozenset())
    (n,) = parse(with_neighbor(add_path={"receive": True})).neighbors
    assert n.add_path.receive == {"ipv4", "ipv6"}
    assert n.add_path.mode("ipv6") == "receive"
    (n,) = parse(with_neighbor(add_path={"ipv6": {"send": True}})).neighbors
    assert (n.add_path.mode("ipv4"), n.add_path.mode("ipv6")) == (None, "send")


def test_families_are_canonical_order():
    (n,) = parse(with_neighbor(families=["ipv6", "ipv4"])).neighbors
    assert n.families == ("ipv4", "ipv6")


def test_addresses_are_normalised():
    c = parse(
        base(
            listen=[{"address": "2001:DB8::0:1"}],
            networks=["2001:DB8:12::/64"],
            neighbors=[
                {"address": "2001:db8:0:0::5", "asn": 1, "source_address": "2001:DB8::1"},
                {"address": "fe80::1%eth0", "asn": 1},
            ],
        )
    )
    assert c.listen[0].address == "2001:db8::1"
    assert c.networks == ("2001:db8:12::/64",)
    assert c.neighbors[0].address == "2001:db8::5"
    assert c.neighbors[0].source_address == "2001:db8::1"
    assert c.neighbors[1].address == "fe80::1%eth0"
    assert c.neighbors[1].family == "ipv6"


def test_route_reflection_keys():
    c = parse(
        base(
            cluster_id="10.0.0.31",
            neighbors=[{"address": "192.0.2.1", "asn": 64512, "rr_client": True}],
        )
    )
    assert c.cluster_id == "10.0.0.31"
    assert c.neighbors[0].rr_client
    # a client through local_as is iBGP too
    c = parse(with_neighbor(asn=65001, local_as=65001, rr_client=True))
    assert c.neighbors[0].rr_client


def test_local_as_and_ibgp():
    (n,) = parse(with_neighbor(asn=65001, local_as=65001)).neighbors
    assert n.ibgp(64512)
    (n,) = parse(with_neighbor(asn=64512, local_as=65001)).neighbors
    assert not n.ibgp(64512)


# --- AS numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, number",
    [
        (64512, 64512),
        ("1.10", 65546),
        ("0.100", 100),
        ("65535.65535", 4294967295),
        ("4200000000", 4200000000),
        (4294967295, 4294967295),
    ],
)
def test_asn_forms(value, number):
    assert parse(base(asn=value)).asn == number
    assert parse(with_neighbor(asn=value)).neighbors[0].asn == number


def test_asdot_in_yaml_must_be_quoted():
    assert loads('router_id: 1.2.3.4\nasn: "1.10"\n').asn == 65546
    with pytest.raises(ConfigError) as info:
        loads("router_id: 1.2.3.4\nasn: 1.10\n", "f.yaml")
    assert info.value.key == "asn"
    assert 'write "1.10"' in info.value.reason


# --- every error: (data, key, reason pattern) -----------------------------------------------

N0 = "neighbors[0]"

ERRORS = [
    # top level
    ({"asn": 1}, "router_id", "required key is missing"),
    ({"router_id": "1.2.3.4"}, "asn", "required key is missing"),
    (base(router_id="1.2.3"), "router_id", "'1.2.3' is not an IPv4 address"),
    (base(router_id="2001:db8::1"), "router_id", "is not an IPv4 address"),
    (base(router_id="0.0.0.0"), "router_id", "must not be 0.0.0.0"),
    (base(cluster_id="0.0.0.0"), "cluster_id", "must not be 0.0.0.0"),
    (base(cluster_id="rr1"), "cluster_id", "is not an IPv4 address"),
    (base(router_id=16909060), "router_id", "expected an IPv4 address, got integer"),
    (base(asn=0), "asn", r"AS number 0 is out of range \(1\.\.4294967295\)"),
    (base(asn=4294967296), "asn", "out of range"),
    (base(asn=23456), "asn", "AS_TRANS"),
    (base(asn="1.70000"), "asn", "both halves"),
    (base(asn="AS65000"), "asn", "is not an AS number"),
    (base(asn=True), "asn", "expected an AS number, got boolean true"),
    (base(asn=[1]), "asn", "expected an AS number, got a list"),
    (base(routerid="1.2.3.4"), "routerid", "unknown key \\(did you mean 'router_id'\\?\\)"),
    (base(zzz=1), "zzz", r"unknown key \(known keys: router_id, asn, cluster_id, listen"),
    (base(hold_time=2), "hold_time", r"2 is not allowed: use 0 \(no keepalives\) or 3\.\.65535"),
    (base(hold_time=1), "hold_time", "1 is not allowed"),
    (base(hold_time=65536), "hold_time", "out of range"),
    (
        base(hold_time="90"),
        "hold_time",
        r"expected an integer, got string '90' \(write it without quotes\)",
    ),
    (base(hold_time=90.5), "hold_time", "expected an integer, got number 90.5"),
    (base(keepalive=90), "keepalive", "keepalive 90 must be less than hold_time 90"),
    (base(hold_time=0, keepalive=10), "keepalive", "hold_time 0 disables keepalives"),
    (base(hold_time=20, keepalive=30), "keepalive", "must be less than hold_time 20"),
    (base(connect_retry=0), "connect_retry", "out of range"),
    (base(control_socket=""), "control_socket", "must not be empty"),
    (base(control_socket="/x" * 60), "control_socket", "107 octets"),
    (base(control_socket=5), "control_socket", r"expected a string, got integer 5 \(quote it\)"),
    # listen
    (base(listen={"address": "1.2.3.4"}), "listen", "expected a list, got a mapping"),
    (base(listen=["1.2.3.4"]), "listen[0]", "expected a mapping, got string"),
    (base(listen=[{"port": 179}]), "listen[0].address", "required key is missing"),
    (base(listen=[{"address": "1.2.3.4", "port": 0}]), "listen[0].port", "out of range"),
    (base(listen=[{"address": "1.2.3.4", "prot": 1}]), "listen[0].prot", "did you mean 'port'"),
    (base(listen=[{"address": "nowhere"}]), "listen[0].address", "not an IPv4 or IPv6 address"),
    (
        base(listen=[{"address": "1.2.3.4"}, {"address": "1.2.3.4", "port": 179}]),
        "listen[1]",
        "1.2.3.4 port 179 is listed twice",
    ),
    # networks
    (base(networks="10.0.0.0/8"), "networks", "expected a list of prefixes"),
    (
        base(networks=["10.0.0.1/8"]),
        "networks[0]",
        r"host bits set \(did you mean 10\.0\.0\.0/8\?\)",
    ),
    (base(networks=["10.0.0.0"]), "networks[0]", "has no prefix length"),
    (base(networks=["10.0.0.0/33"]), "networks[0]", "is not a prefix"),
    (base(networks=[10]), "networks[0]", "expected a prefix"),
    (
        base(networks=["10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8"]),
        "networks[2]",
        r"10\.0\.0\.0/8 is listed twice \(also networks\[0\]\)",
    ),
    # neighbors: structure
    (base(neighbors={"address": "1.2.3.4"}), "neighbors", "expected a list"),
    (base(neighbors=[None]), N0, "expected a mapping, got null"),
    (base(neighbors=[{"asn": 1}]), f"{N0}.address", "required key is missing"),
    (base(neighbors=[{"address": "192.0.2.1"}]), f"{N0}.asn", "required key is missing"),
    (with_neighbor(hold_tme=3), f"{N0}.hold_tme", "did you mean 'hold_time'"),
    (with_neighbor(**{"1": 2}), f"{N0}.1", "unknown key"),
    # neighbors: values
    (with_neighbor(address="192.0.2.300"), f"{N0}.address", "not an IPv4 or IPv6 address"),
    (with_neighbor(address="0.0.0.0"), f"{N0}.address", "not a unicast host address"),
    (with_neighbor(address="224.0.0.5"), f"{N0}.address", "not a unicast host address"),
    (with_neighbor(address="fe80::1"), f"{N0}.address", "needs its interface"),
    (with_neighbor(address=12345), f"{N0}.address", "YAML read it as a number"),
    (with_neighbor(asn=-1), f"{N0}.asn", "out of range"),
    (with_neighbor(port=70000), f"{N0}.port", "out of range"),
    (
        with_neighbor(passive="yes"),
        f"{N0}.passive",
        r"got string 'yes' \(write it without quotes\)",
    ),
    (with_neighbor(passive=1), f"{N0}.passive", "expected true or false, got integer 1"),
    (with_neighbor(shutdown=None), f"{N0}.shutdown", "expected true or false, got null"),
    (with_neighbor(source_address="x"), f"{N0}.source_address", "not an IPv4 or IPv6"),
    (
        with_neighbor(source_address="2001:db8::1"),
        f"{N0}.source_address",
        "not of the same family as the neighbor 192.0.2.1",
    ),
    (with_neighbor(source_address="192.0.2.1"), f"{N0}.source_address", "neighbor's own address"),
    (with_neighbor(hold_time=2), f"{N0}.hold_time", "2 is not allowed"),
    (with_neighbor(keepalive=0), f"{N0}.keepalive", "out of range"),
    (with_neighbor(keepalive=90), f"{N0}.keepalive", "keepalive 90 must be less than hold_time 90"),
    (with_neighbor(hold_time=9, keepalive=10), f"{N0}.keepalive", "must be less than hold_time 9"),
    (with_neighbor(hold_time=0, keepalive=10), f"{N0}.keepalive", "hold_time 0 disables"),
    (
        {**with_neighbor(hold_time=20), "keepalive": 30, "hold_time": 90},
        f"{N0}.hold_time",
        r"keepalive 30 must be less than hold_time 20 \(the keepalive is inherited from the top level\)",
    ),
    (
        {**with_neighbor(keepalive=30), "hold_time": 10},
        f"{N0}.keepalive",
        r"\(the hold_time is inherited from the top level\)",
    ),
    (with_neighbor(connect_retry=0), f"{N0}.connect_retry", "out of range"),
    (with_neighbor(delay_open=-1), f"{N0}.delay_open", "out of range"),
    (with_neighbor(password="x" * 81), f"{N0}.password", "longer than 80 octets"),
    (with_neighbor(password=""), f"{N0}.password", "must not be empty"),
    (with_neighbor(password=1234), f"{N0}.password", r"\(quote it\)"),
    (with_neighbor(ttl_security=255), f"{N0}.ttl_security", r"out of range \(1\.\.254\)"),
    (with_neighbor(multihop=0), f"{N0}.multihop", r"out of range \(1\.\.255\)"),
    (
        with_neighbor(ttl_security=1, multihop=2),
        f"{N0}.multihop",
        "ttl_security and multihop are mutually exclusive",
    ),
    (with_neighbor(families=[]), f"{N0}.families", "at least one family"),
    (with_neighbor(families="ipv4"), f"{N0}.families", "expected a list of families"),
    (
        with_neighbor(families=["ipv4", "vpnv4"]),
        f"{N0}.families[1]",
        "unknown family string 'vpnv4'",
    ),
    (with_neighbor(families=["ipv4", "ipv4"]), f"{N0}.families[1]", "ipv4 is listed twice"),
    (with_neighbor(description=7), f"{N0}.description", "expected a string"),
    (with_neighbor(add_path=True), f"{N0}.add_path", "expected a mapping"),
    (with_neighbor(add_path={"sned": True}), f"{N0}.add_path.sned", "did you mean 'send'"),
    (with_neighbor(add_path={"send": "true"}), f"{N0}.add_path.send", "expected true or false"),
    (with_neighbor(add_path={"ipv4": {"send": 1}}), f"{N0}.add_path.ipv4.send", "expected true"),
    (with_neighbor(add_path={"ipv4": True}), f"{N0}.add_path.ipv4", "expected a mapping"),
    (
        with_neighbor(add_path={"ipv4": {"recieve": True}}),
        f"{N0}.add_path.ipv4.recieve",
        "did you mean 'receive'",
    ),
    (
        with_neighbor(families=["ipv4"], add_path={"ipv6": {"send": True}}),
        f"{N0}.add_path.ipv6",
        r"ipv6 is not one of this neighbor's families \['ipv4'\]",
    ),
    (
        with_neighbor(add_path={"ipv4": {}, "send": True}),
        f"{N0}.add_path.send",
        "write either",
    ),
    (with_neighbor(route_refresh="no"), f"{N0}.route_refresh", "expected true or false"),
    (with_neighbor(extended_message=0), f"{N0}.extended_message", "expected true or false"),
    (with_neighbor(four_octet_as=None), f"{N0}.four_octet_as", "expected true or false"),
    (with_neighbor(local_as=0), f"{N0}.local_as", "out of range"),
    (with_neighbor(next_hop_self="auto"), f"{N0}.next_hop_self", "expected true or false"),
    (with_neighbor(rr_client=1), f"{N0}.rr_client", "expected true or false"),
    (
        with_neighbor(asn=65001, rr_client=True),
        f"{N0}.rr_client",
        "only an iBGP neighbor can be a route-reflection client",
    ),
    (
        with_neighbor(asn=4200000000, four_octet_as=False),
        f"{N0}.four_octet_as",
        "the neighbor's AS 4200000000 needs four-octet AS support",
    ),
    (
        with_neighbor(local_as="1.1", four_octet_as=False),
        f"{N0}.four_octet_as",
        "the local AS 65537 needs four-octet AS support",
    ),
    # across neighbors
    (
        base(
            neighbors=[
                {"address": "192.0.2.1", "asn": 1},
                {"address": "2001:db8::1", "asn": 1},
                {"address": "2001:DB8::01", "asn": 2},
            ]
        ),
        "neighbors[2].address",
        r"duplicate neighbor 2001:db8::1 \(also neighbors\[1\]\)",
    ),
    (
        base(listen=[{"address": "192.0.2.1"}], neighbors=[{"address": "192.0.2.1", "asn": 1}]),
        f"{N0}.address",
        r"192\.0\.2\.1 is this router's own listen address \(listen\[0\]\)",
    ),
]


@pytest.mark.parametrize(
    "data, key, reason", ERRORS, ids=[f"{i}-{e[1]}" for i, e in enumerate(ERRORS)]
)
def test_error(data, key, reason):
    e = error_of(data)
    assert e.file == "test.yaml"
    assert e.key == key
    assert re.search(reason, e.reason), e.reason


def test_error_top_level_not_a_mapping():
    assert str(error_of([1, 2])) == "test.yaml: expected a mapping at the top level, got a list"
    assert str(error_of(None)) == "test.yaml: the configuration is empty"


def test_unknown_key_comes_before_missing_key():
    e = error_of({"router_id": "1.2.3.4", "as": 1})
    assert (e.key, e.reason) == ("as", "unknown key (did you mean 'asn'?)")


def test_parse_default_file_name():
    with pytest.raises(ConfigError, match=r"^<string>: asn: required key is missing$"):
        parse({"router_id": "1.2.3.4"})


# --- load() ---------------------------------------------------------------------------------


def test_load_file(tmp_path: Path):
    path = tmp_path / "bgpd.yaml"
    path.write_text(EXAMPLE)
    c = load(path)
    assert isinstance(c, Config)
    assert len(c.neighbors) == 2
    assert c == loads(EXAMPLE)


def test_load_reports_the_file_name(tmp_path: Path):
    path = tmp_path / "bgpd.yaml"
    path.write_text("router_id: 192.0.2.10\nasn: 1\nneighbors:\n  - {address: 192.0.2.1, asn: x}\n")
    with pytest.raises(ConfigError) as info:
        load(str(path))
    assert str(info.value).startswith(f"{path}: neighbors[0].asn: ")


def test_load_missing_file(tmp_path: Path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read the file: No such file"):
        load(path)


def test_load_not_utf8(tmp_path: Path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"router_id: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path)


def test_load_empty_file(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match=r"empty\.yaml: the configuration is empty"):
        load(path)


def test_yaml_syntax_error_names_line_and_column():
    with pytest.raises(ConfigError) as info:
        loads("router_id: 1.2.3.4\nasn: [1\n", "bad.yaml")
    assert info.value.key.startswith("line ")
    assert info.value.reason.startswith("invalid YAML: ")


def test_yaml_duplicate_key_is_an_error():
    text = (
        "router_id: 1.2.3.4\nasn: 1\nneighbors:\n  - address: 192.0.2.1\n    asn: 2\n    asn: 3\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, "dup.yaml")
    assert str(info.value) == "dup.yaml: line 6, column 5: invalid YAML: duplicate key 'asn'"


def test_yaml_merge_keys_may_be_overridden():
    text = (
        "router_id: 1.2.3.4\nasn: 1\nneighbors:\n"
        "  - &tor {address: 192.0.2.1, asn: 2, hold_time: 30}\n"
        "  - <<: *tor\n    address: 192.0.2.2\n"
    )
    n1, n2 = loads(text).neighbors
    assert (n2.address, n2.asn, n2.hold_time) == ("192.0.2.2", 2, 30)


def test_yaml_booleans_must_be_booleans():
    c = loads(
        "router_id: 1.2.3.4\nasn: 1\nneighbors:\n  - {address: 192.0.2.1, asn: 2, passive: true}\n"
    )
    assert c.neighbors[0].passive is True
    with pytest.raises(ConfigError, match=r"neighbors\[0\]\.passive: expected true or false"):
        loads(
            'router_id: 1.2.3.4\nasn: 1\nneighbors:\n  - {address: 192.0.2.1, asn: 2, passive: "true"}\n'
        )


# --- graceful_restart ------------------------------------------------------------------------


def test_graceful_restart_defaults_and_restart_marker():
    assert parse(base()).graceful_restart is None
    gr = parse(base(graceful_restart=True)).graceful_restart
    assert (gr.enabled, gr.restart_time, gr.selection_deferral) == (True, 120, 240)
    assert gr.restart_marker is None  # beside control_socket (bgpd.speaker.restart_marker_path)
    gr = parse(base(graceful_restart={"restart_marker": "/var/lib/bgpd/restart"})).graceful_restart
    assert gr.restart_marker == "/var/lib/bgpd/restart"


@pytest.mark.parametrize(
    "marker, reason",
    [("", "must not be empty"), (5, "expected a string, got integer 5")],
)
def test_graceful_restart_restart_marker_errors(marker, reason):
    e = error_of(base(graceful_restart={"restart_marker": marker}))
    assert e.key == "graceful_restart.restart_marker" and reason in e.reason, str(e)


def test_neighbor_graceful_restart_time():
    """A neighbor's own restart time (BIRD's per-protocol ``graceful restart time``)."""
    data = with_neighbor(graceful_restart_time=10)
    data["graceful_restart"] = {"restart_time": 120}
    c = parse(data)
    n = c.neighbors[0]
    assert n.graceful_restart_time == 10 and n.restart_time(c.graceful_restart) == 10
    c = parse({**with_neighbor(), "graceful_restart": True})
    assert c.neighbors[0].graceful_restart_time is None
    assert c.neighbors[0].restart_time(c.graceful_restart) == 120


@pytest.mark.parametrize(
    "value, gr, reason",
    [
        (0, True, "0 is out of range (1..4095)"),
        (4096, True, "4096 is out of range (1..4095)"),
        ("10", True, "expected an integer"),
        (10, None, "needs graceful_restart on at the top level"),
        (10, {"enabled": False}, "needs graceful_restart on at the top level"),
    ],
)
def test_neighbor_graceful_restart_time_errors(value, gr, reason):
    data = with_neighbor(graceful_restart_time=value)
    if gr is not None:
        data["graceful_restart"] = gr
    e = error_of(data)
    assert e.key == "neighbors[0].graceful_restart_time" and reason in e.reason, str(e)


# --- the documentation covers every key -----------------------------------------------------


def test_every_key_is_documented():
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for cls in (Config, Listen, Neighbor):
        for f in dataclasses.fields(cls):
            name = f.metadata.get("yaml") or f.name  # the YAML key (import/export)
            assert f"`{name}`" in doc, f"{cls.__name__}.{name} is not in docs/configuration.md"


def test_kernel_import_names_existing_policies():
    base = "router_id: 1.2.3.4\nasn: 1\n"
    ok = loads(
        base
        + "policies: {pods: {default: accept, terms: [{match: {prefix: ['10.244.0.0/16 le 26']}}]}}\n"
        + "kernel: {import: pods}\n"
    )
    assert ok.kernel.import_policy == ("pods",)
    with pytest.raises(ConfigError, match=r"kernel\.import: no policy named 'nope'"):
        loads(base + "kernel: {import: nope}\n")

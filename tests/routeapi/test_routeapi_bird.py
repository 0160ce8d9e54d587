"""The route API against real BIRD 2 peers: bgpd runs as a subprocess (tests/interop's
harness), routes are added, changed and deleted with the real ``bgpd route`` command, and
what the peers have is read with ``birdc``.

One bgpd (AS 65000) with two BIRD neighbors: ``ibgp`` (AS 65000, sees NEXT_HOP, LOCAL_PREF
and MED as given) and ``ebgp`` (AS 65010, sees our AS prepended and our address as next hop).
BIRD's own per-channel counters (``Import updates``/``Import withdraws`` of ``show protocols
all``) count what it received, so "changed in place" is checked as one update and no
withdrawal, from the peer's side.
"""

from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.interop

AS = 65000
EBGP_AS = 65010
P4 = "198.51.100.0/24"
P4B = "203.0.113.0/24"
P6 = "2001:db8:77::/48"


class Lab:
    def __init__(self, bird, bgpd, addresses) -> None:
        a_bgpd, a_ibgp, a_ebgp = addresses(), addresses(), addresses()
        self.ibgp = bird(asn=AS, address=a_ibgp, neighbors=[{"address": a_bgpd, "asn": AS}])
        self.ebgp = bird(asn=EBGP_AS, address=a_ebgp, neighbors=[{"address": a_bgpd, "asn": AS}])
        self.d = bgpd(
            asn=AS,
            address=a_bgpd,
            neighbors=[{"address": a_ibgp, "asn": AS}, {"address": a_ebgp, "asn": EBGP_AS}],
        )
        self.d.wait_state(a_ibgp)
        self.d.wait_state(a_ebgp)
        self.ibgp.wait_state(a_bgpd)
        self.ebgp.wait_state(a_bgpd)

    def route(self, *args: str, check: bool = True):
        """``bgpd route ARGS`` (the real command); the completed process."""
        res = self.d.cli("route", *args)
        if check:
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res

    def listing(self) -> list[dict]:
        routes = self.d.cli_json("route", "list")["routes"]
        for r in routes:
            r.pop("age")
            r.pop("expires_in")
        return routes

    def stats(self, peer, channel: str = "ipv4") -> tuple[int, int]:
        """(route updates, route withdrawals) ``peer`` received from bgpd in ``channel``."""
        out = peer.birdc("show", "protocols", "all", peer.protocol_name(self.d.address))
        part = out.split(f"Channel {channel}")[1].split("Channel ")[0]
        updates = int(re.search(r"Import updates:\s+(\d+)", part).group(1))
        withdraws = int(re.search(r"Import withdraws:\s+(\d+)", part).group(1))
        return updates, withdraws

    def views(self) -> tuple:
        return tuple(p.routes(f) for p in (self.ibgp, self.ebgp) for f in ("ipv4", "ipv6"))


def one(paths: list[dict]) -> dict:
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture
def lab(bird, bgpd, addresses):
    return Lab(bird, bgpd, addresses)


def test_add_modify_delete(lab):
    d = lab.d
    lab.route(
        "add",
        P4,
        "--next-hop",
        "192.0.2.50",
        "--community",
        "65000:1",
        "--community",
        "no-export",
        "--large-community",
        "65000:1:2",
        "--local-pref",
        "200",
        "--med",
        "10",
        "--owner",
        "metallb",
    )
    p = one(lab.ibgp.wait_route(P4))
    assert p["next_hop"] == "192.0.2.50" and p["local_pref"] == 200 and p["med"] == 10
    assert sorted(p["communities"]) == ["65000:1", "65535:65281"]
    assert p["large_communities"] == ["65000:1:2"] and p["as_path"] == []
    # NO_EXPORT keeps it from the eBGP peer
    lab.route("add", P4B, "--med", "5", "--as-path-prepend", "1")
    e = one(lab.ebgp.wait_route(P4B))
    assert e["as_path"] == [AS, AS] and e["next_hop"] == d.address and e["med"] == 5
    assert P4 not in lab.ebgp.routes()
    lab.route("add", P6, "--next-hop", "2001:db8::77", "--owner", "metallb")
    assert one(lab.ibgp.wait_route(P6))["next_hop"] == "2001:db8::77"

    # add again: changed in place, one update per peer, no withdrawal
    before_i, before_e = lab.stats(lab.ibgp), lab.stats(lab.ebgp)
    res = lab.route("add", P4B, "--med", "20", "--as-path-prepend", "2", "--community", "65000:9")
    assert "modified" in res.stdout
    e = one(lab.ebgp.wait_route(P4B, predicate=lambda ps: ps[0]["med"] == 20))
    assert e["as_path"] == [AS, AS, AS] and e["communities"] == ["65000:9"]
    i = one(lab.ibgp.wait_route(P4B, predicate=lambda ps: ps[0]["med"] == 20))
    assert i["as_path"] == []  # prepends are for eBGP
    assert lab.stats(lab.ibgp) == (before_i[0] + 1, before_i[1])
    assert lab.stats(lab.ebgp) == (before_e[0] + 1, before_e[1])

    # the same again: nothing to say
    res = lab.route("add", P4B, "--med", "20", "--as-path-prepend", "2", "--community", "65000:9")
    assert "unchanged" in res.stdout
    time.sleep(1)
    assert lab.stats(lab.ebgp) == (before_e[0] + 1, before_e[1])

    listing = {(r["prefix"], r["owner"]): r for r in lab.listing()}
    assert set(listing) == {(P4, "metallb"), (P4B, "default"), (P6, "metallb")}
    assert listing[(P4, "metallb")]["communities"] == ["65000:1", "65535:65281"]
    text = lab.route("list").stdout
    assert "metallb" in text and P6 in text

    lab.route("del", P4, "--owner", "metallb")
    lab.route("del", P4B)
    lab.ibgp.wait_no_route(P4)
    lab.ebgp.wait_no_route(P4B)
    lab.ibgp.wait_no_route(P4B)
    assert P6 in lab.ibgp.routes("ipv6")


def test_two_owners(lab):
    lab.route("add", P4, "--owner", "ctl-a", "--local-pref", "100", "--community", "65000:100")
    lab.route("add", P4, "--owner", "ctl-b", "--local-pref", "300", "--community", "65000:300")
    lab.route("add", P4B, "--owner", "ctl-b")
    lab.ibgp.wait_route(P4, predicate=lambda ps: ps[0]["local_pref"] == 300)
    lab.ibgp.wait_route(P4B)
    withdraws = lab.stats(lab.ibgp)[1]
    # a cannot delete b's route
    res = lab.route("del", P4B, "--owner", "ctl-a", check=False)
    assert res.returncode == 1
    assert "owner 'ctl-a' has no route 203.0.113.0/24 (owned by: ctl-b)" in res.stderr
    # b deletes its route for P4: a's takes over, without a withdrawal in between
    lab.route("del", P4, "--owner", "ctl-b")
    p = one(lab.ibgp.wait_route(P4, predicate=lambda ps: ps[0]["local_pref"] == 100))
    assert p["communities"] == ["65000:100"]
    assert lab.stats(lab.ibgp)[1] == withdraws
    assert {(r["prefix"], r["owner"]) for r in lab.listing()} == {(P4, "ctl-a"), (P4B, "ctl-b")}
    lab.route("del", P4, "--owner", "ctl-a")
    lab.ibgp.wait_no_route(P4)
    assert P4B in lab.ibgp.routes()
    assert (
        json.loads(lab.route("list", "--owner", "ctl-b", "--json").stdout)["routes"][0]["prefix"]
        == P4B
    )


def test_lease_expiry(lab):
    lab.route("add", P4, "--lease", "3s", "--owner", "crashy")
    lab.route("add", P4B, "--lease", "3s", "--owner", "alive")
    lab.ibgp.wait_route(P4)
    lab.ibgp.wait_route(P4B)
    t_last = time.monotonic()
    for _ in range(4):  # "alive" renews every second, "crashy" never does
        time.sleep(1)
        res = lab.route("add", P4B, "--lease", "3s", "--owner", "alive")
        t_last = time.monotonic()
        assert "renewed" in res.stdout
    lab.ibgp.wait_no_route(P4, timeout=5)
    assert P4B in lab.ibgp.routes()
    lab.ibgp.wait_no_route(P4B, timeout=8)
    gone_after = time.monotonic() - t_last
    assert 2.5 < gone_after < 5.5, gone_after  # its lease (3 s) after the last renewal
    assert lab.listing() == []
    assert "route lease expired" in lab.d.log_text()


def test_reload_keeps_them(lab):
    d = lab.d
    lab.route("add", P4, "--owner", "ctl", "--med", "7")
    lab.route("add", P6, "--owner", "ctl", "--next-hop", "2001:db8::77", "--lease", "1h")
    lab.ibgp.wait_route(P4)
    lab.ibgp.wait_route(P6)
    before = lab.listing()
    withdraws = lab.stats(lab.ibgp)[1]
    d.networks = ["192.0.2.128/25"]
    d.config_path.write_text(d.config_text())
    res = d.cli("reload")
    assert res.returncode == 0, res.stderr
    lab.ibgp.wait_route("192.0.2.128/25")
    assert lab.listing() == before
    assert one(lab.ibgp.routes()[P4])["med"] == 7 and P6 in lab.ibgp.routes("ipv6")
    assert lab.stats(lab.ibgp)[1] == withdraws


BAD = [
    # (args, exit status, in stderr)
    (
        (P4.replace(".0/", ".1/"),),
        1,
        "198.51.100.1/24 has host bits set (did you mean 198.51.100.0/24?)",
    ),
    (
        (P4, "--community", "65000:lots"),
        1,
        "community '65000:lots': '65000:lots': 'lots' is not a number",
    ),
    ((P4, "--community", "no-exprot"), 1, "is not a community"),
    ((P4, "--large-community", "1:2"), 1, "is not a large community"),
    ((P4, "--lease", "a while"), 1, "lease: 'a while' is not a duration"),
    ((P4, "--lease", "-5s"), 1, "is not a duration"),
    ((P4, "--next-hop", "2001:db8::1"), 1, "is not an IPv4 address"),
    ((P4, "--owner", "two words"), 1, "is not a valid name"),
    ((P4, "--local-pref", "high"), 2, "'high' is not a valid integer"),
    ((P4, "--as-path-prepend", "40"), 1, "as_path_prepend: 40 is out of range (0..32)"),
]


def test_bad_input_changes_nothing(lab):
    lab.route("add", P4, "--owner", "ctl", "--med", "1")
    lab.route("add", P6, "--owner", "ctl", "--next-hop", "2001:db8::77")
    lab.ibgp.wait_route(P4)
    lab.ibgp.wait_route(P6)
    lab.ebgp.wait_route(P4)
    before = (lab.listing(), lab.views(), lab.stats(lab.ibgp), lab.stats(lab.ebgp))
    for args, status, message in BAD:
        res = lab.route("add", *args, check=False)
        assert res.returncode == status, (args, res.stdout, res.stderr)
        assert message in res.stderr, (args, res.stderr)
    for args, message in [
        ((P4, "--owner", "nobody"), "no owner 'nobody' has routes (owners with routes: ctl)"),
        ((P4,), "no owner 'default' has routes"),
        ((P4B, "--owner", "ctl"), "owner 'ctl' has no route 203.0.113.0/24"),
        (("198.51.100.9/24", "--owner", "ctl"), "has host bits set"),
    ]:
        res = lab.route("del", *args, check=False)
        assert res.returncode == 1 and message in res.stderr, (args, res.stderr)
    res = lab.route("list", "--owner", "nobody", check=False)
    assert res.returncode == 1 and "no owner 'nobody' has routes" in res.stderr
    time.sleep(1)  # anything sent by mistake would have arrived
    after = (lab.listing(), lab.views(), lab.stats(lab.ibgp), lab.stats(lab.ebgp))
    assert after == before

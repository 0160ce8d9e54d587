"""Calico's Go parsers (ported in bc_calico_parsers.py) on BIRD 1.6.8's real replies and on ours:
each must accept both, and read the same values from both (clock times normalised)."""

from __future__ import annotations

import bc_calico_parsers as cp
import bc_lab as lab
import pytest
from bc_helpers import ThreadedServer, normalise, query

PEERS = [lab.MESH, lab.NODE, lab.PASSIVE, lab.ACTIVE]
COMMANDS = ["show status", "show protocols", "show route"] + [
    f"show protocols all {p}" for p in PEERS
]


@pytest.fixture(scope="module")
def both(bird_lab, tmp_path_factory):
    greeting, theirs, dyn = lab.capture(bird_lab.sock, COMMANDS)
    snap = lab.lab_snapshot(dyn)
    path = str(tmp_path_factory.mktemp("bc-cp") / "bird.ctl")
    with ThreadedServer(path, lambda: snap, clock=lambda: dyn.now, version="1.6.8"):
        r = query(path, *COMMANDS)
    mine = dict(zip(COMMANDS, r[1:], strict=True))
    return {"bird": (greeting, theirs), "bgpd": (r[0], mine)}


def lines(both, who: str, cmd: str) -> list[str]:
    greeting, replies = both[who]
    return greeting + replies[cmd]


def same(a, b) -> None:
    assert normalise(repr(a)) == normalise(repr(b))


def test_gr_in_progress(both):
    theirs = cp.gr_in_progress(lines(both, "bird", "show status"))
    assert theirs is True  # the lab runs with -R and a GR peer that never comes up
    assert cp.gr_in_progress(lines(both, "bgpd", "show status")) is theirs


@pytest.mark.parametrize("ipv", ["4", "6"])
def test_peers_table_and_readiness(both, ipv):
    theirs = cp.scan_bird_peers(lines(both, "bird", "show protocols"), ipv)
    mine = cp.scan_bird_peers(lines(both, "bgpd", "show protocols"), ipv)
    # the disabled peer's row has 5 fields and is skipped by both
    sep = "." if ipv == "4" else ":"
    assert [p.peer_ip for p in theirs] == [
        a.replace(".", sep) for a in ("192.0.2.2", "192.0.2.8", "192.0.2.7")
    ]
    same(mine, theirs)
    gr = cp.gr_in_progress(lines(both, "bird", "show status"))
    for within in (True, False):
        assert cp.check_bird_ready(mine, gr, within) == cp.check_bird_ready(theirs, gr, within)
    assert cp.check_bird_ready(theirs, gr, False) == (True, "at least one established")


def test_node_status_peers(both):
    result = {}
    for who in ("bird", "bgpd"):
        peers = cp.scan_status_peers(lines(both, who, "show protocols"))
        for p in peers:
            cp.complete_peer(p, both[who][1][f"show protocols all {p.session}"])
        result[who] = [cp.node_status_peer(p) for p in peers]
    # Passive maps to "" (not in birdStateToBGPState); the disabled peer is skipped
    assert [p["state"] for p in result["bird"]][0::2] == ["Established", "Active"] or [
        p["state"] for p in result["bird"]
    ][0::2] == ["Established", "Connect"]
    assert result["bird"][1]["state"] == ""
    assert result["bird"][0] == {
        "peerIP": "192.0.2.2",
        "type": "Mesh",
        "state": "Established",
        "since": result["bird"][0]["since"],
        "established": True,
    }
    same(result["bgpd"], result["bird"])


def test_bird_info(both):
    theirs = cp.bird_info(lines(both, "bird", "show status"))
    mine = cp.bird_info(lines(both, "bgpd", "show status"))
    assert theirs.ready and theirs.router_id == "192.0.2.1"
    assert theirs.stopped_at == "0024-Graceful restart recovery in progress"
    same(mine, theirs)


def test_routes(both):
    theirs = cp.scan_bird_routes(lines(both, "bird", "show route"))
    mine = cp.scan_bird_routes(lines(both, "bgpd", "show route"))
    assert len(theirs) == 10 and all(r.primary for r in theirs)
    same(mine, theirs)

    def api(r):
        try:
            return cp.route_to_api(r)
        except cp.GoError as e:  # e.g. the "prohibited" route: no regex matches it
            return f"error: {e}"

    api_theirs = [api(r) for r in theirs]
    api_mine = [api(r) for r in mine]
    assert api_mine == api_theirs
    assert [a for a in api_theirs if isinstance(a, str)] == [
        "error: not a valid line: session name '' is not a correct format"
    ]
    mesh = next(a for a in api_mine if isinstance(a, dict) and a["destination"] == "172.16.2.0/24")
    assert (mesh["peerIP"], mesh["sourceType"], mesh["type"]) == ("192.0.2.2", "NodeMesh", "FIB")


def test_calico_version_string_reads_as_calico_expects(serve):
    """With the fork's version string (the default), BirdInfo reads a version; with Debian's
    "1.6.8" it reads none (it wants "BIRD v...")."""
    from datetime import datetime

    from bgpd.birdctl.snapshot import Snapshot, Status

    t = datetime(2026, 8, 22, 10, 0, 0)
    snap = Snapshot(Status("10.192.0.2", t, t))
    path = serve(lambda: snap, clock=lambda: t)
    r = query(path, "show status")
    st = cp.bird_info(r[0] + r[1])
    assert st.ready and st.version == "v0.3.3+birdv1.6.8" and st.router_id == "10.192.0.2"
    assert st.stopped_at is None and st.last_boot == "2026-08-22 10:00:00"
    assert cp.gr_in_progress(r[0] + r[1]) is False

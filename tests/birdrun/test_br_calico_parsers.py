"""Calico's Go consumers of the control socket (ported in tests/birdctl/bc_calico_parsers.py)
on the replies of a real bgpd-bird and of BIRD 1.6.8 running the same configuration: every
rule accepts both, and reads the same values (times normalised), during the graceful-restart
recovery and after it."""

from __future__ import annotations

import bc_calico_parsers as cp
import br_lab as lab
import pytest
from bc_helpers import normalise, query


def same(a, b) -> None:
    text = lambda v: normalise(repr(v)).replace(lab.CALICO_VERSION, "1.6.8")  # noqa: E731
    assert text(a) == text(b)


def replies(replies: dict, who: str, cmd: str) -> list[str]:
    return replies[who][0] + replies[who][lab.READ_ONLY.index(cmd) + 1]


@pytest.fixture(params=["recovery", "steady"])
def moment(request):
    return request.param, request.getfixturevalue(request.param)


def test_gr_in_progress(moment):
    name, r = moment
    theirs = cp.gr_in_progress(replies(r, "bird", "show status"))
    assert theirs is (name == "recovery")
    assert cp.gr_in_progress(replies(r, "bgpd", "show status")) is theirs


@pytest.mark.parametrize("within", [True, False])
def test_readiness(moment, within):
    """checkBIRDReady: the peers table and the GR check give the same verdict."""
    name, r = moment
    verdict = {}
    for who in ("bird", "bgpd"):
        peers = cp.scan_bird_peers(replies(r, who, "show protocols"), "4")
        gr = cp.gr_in_progress(replies(r, who, "show status"))
        verdict[who] = (peers, cp.check_bird_ready(peers, gr, within))
    same(verdict["bgpd"], verdict["bird"])
    peers, (ready, why) = verdict["bird"]
    # the disabled peer's row has 5 fields and is skipped
    assert [p.peer_ip for p in peers] == ["192.0.2.2", "192.0.2.7", "192.0.2.8"]
    assert ready is (not within), why  # within the threshold, not all peers are up


def test_calicoctl_and_node_status_peers(lab_sides, steady):
    """calicoctl node status / CalicoNodeStatus: ``show protocols``, then ``show protocols
    all NAME`` per peer on the same connection, as peers.go does."""
    result = {}
    for who, side in lab_sides.sides().items():
        r = query(side.sock, "show protocols")
        peers = cp.scan_status_peers(r[0] + r[1])
        details = query(side.sock, *[f"show protocols all {p.session}" for p in peers])
        for p, lines in zip(peers, details[1:], strict=True):
            cp.complete_peer(p, lines)
        result[who] = [cp.node_status_peer(p) for p in peers]
    same(result["bgpd"], result["bird"])
    by_ip = {p["peerIP"]: p for p in result["bird"]}
    assert by_ip["192.0.2.2"]["state"] == "Established" and by_ip["192.0.2.2"]["established"]
    assert by_ip["192.0.2.7"]["state"] == "Active"
    assert by_ip["192.0.2.8"]["state"] == ""  # Passive maps to nothing


def test_bird_info(moment):
    name, r = moment
    theirs = cp.bird_info(replies(r, "bird", "show status"))
    mine = cp.bird_info(replies(r, "bgpd", "show status"))
    assert theirs.ready and theirs.router_id == "192.0.2.1"
    # Calico's fork says "BIRD v0.3.3+birdv1.6.8", read as the version; Debian's "1.6.8"
    # has no "v" and gives none: everything else is read the same
    assert mine.version == lab.CALICO_VERSION and theirs.version == ""
    mine.version = theirs.version
    same(mine, theirs)
    if name == "recovery":
        assert theirs.stopped_at == "0024-Graceful restart recovery in progress"


def test_routes(steady):
    theirs = cp.scan_bird_routes(replies(steady, "bird", "show route"))
    mine = cp.scan_bird_routes(replies(steady, "bgpd", "show route"))
    assert len(theirs) >= 10 and all(r.primary for r in theirs)
    same(mine, theirs)

    def api(r):
        try:
            return cp.route_to_api(r)
        except cp.GoError as e:
            return f"error: {e}"

    assert [api(r) for r in mine] == [api(r) for r in theirs]
    mesh = [api(r) for r in mine if r.dest == "172.16.1.0/24"]
    assert mesh == [
        {
            "type": "FIB",
            "destination": "172.16.1.0/24",
            "gateway": "192.0.2.2",
            "interface": "brv0",
            "sourceType": "NodeMesh",
            "peerIP": "192.0.2.2",
        }
    ]

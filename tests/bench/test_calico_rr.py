"""bench/calico_rr.py at test size, correctness only (no timing assertions): the confd files it
writes have the golden output's shape, BIRD 1.6.8 and bgpd accept them, its checks fail on
wrong routes, and 50 nodes settle on a reflector of each kind with every check passing (the
kernel table of the reflector's namespace included)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from needs import skip_or_fail

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import calico_rr as cr  # noqa: E402

from bgpd.bird import check_file  # noqa: E402
from bgpd.bird.translate import translate  # noqa: E402

GOLDENS = Path("calico-confd/confd/tests/compiled_templates")
NODES = 50


@pytest.fixture(scope="module")
def goldens(shared_corpora) -> Path:
    path = shared_corpora / GOLDENS
    if not path.is_dir():
        skip_or_fail(f"{path} is absent (see /work/shared/corpora/calico-confd/SOURCE.md)")
    return path


def test_bird_cfg_is_confds_route_reflector_output(goldens):
    """With the golden case's inputs (router id, AS, cluster ID, two iBGP clients), bird.cfg is
    byte for byte the golden file without its one eBGP peer (the benchmark has none)."""
    golden = (goldens / "explicit_peering/route_reflector/bird.cfg").read_text()
    ebgp = re.compile(r"protocol bgp Node_172_19_4_87 from bgp_template \{\n.*?\n\}\n", re.S)
    assert ebgp.search(golden), "the golden file changed: no eBGP peer block to leave out"
    want = ebgp.sub("", golden)
    got = cr.bird_cfg(
        ["10.192.0.3", "10.192.0.4"], router_id="10.192.0.2", asn=64532, cluster_id="10.0.0.1"
    )
    assert got == want


def test_ipam_and_aggr_files_are_confds_output(goldens):
    rr = goldens / "explicit_peering/route_reflector/bird_ipam.cfg"
    assert cr.bird_ipam_cfg([("192.168.0.0/16", "ipip")]) == rr.read_text()
    pools = [("172.16.0.0/16", "ipip"), ("172.17.0.0/16", "noencap"), ("192.168.0.0/16", "ipip")]
    mixed = goldens / "cluster_routes/noencap-only/bird_ipam.cfg"
    assert cr.bird_ipam_cfg(pools) == mixed.read_text()
    empty = goldens / "password/step1/bird_aggr.cfg"
    assert cr.bird_aggr_cfg([]) == empty.read_text().rstrip("\n") + "\n"
    text = cr.bird_aggr_cfg(["192.168.255.192/26"])
    golden = (goldens / "explicit_peering/route_reflector/bird_aggr.cfg").read_text()
    # the golden's per-block lines, for its confirmed block 192.168.221.64/26
    for line in golden.splitlines():
        if "192.168.221.64/26" in line:
            assert line.replace("192.168.221.64/26", "192.168.255.192/26") in text.splitlines()


@pytest.mark.parametrize(
    ("pool", "log"), [("noencap", "info"), ("ipip", "none"), ("noencap", "debug")]
)
def test_files_load_in_bird_and_bgpd(bird16, tmp_path, pool, log):
    main = cr.write_confd(tmp_path, NODES, pool, log, rr_blocks=1)
    r = subprocess.run(
        [str(bird16 / "bird"), "-p", "-c", str(main)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    config, extras = translate(check_file(str(main)))
    assert str(config.router_id) == cr.R_ADDR
    assert str(config.cluster_id) == cr.CLUSTER_ID
    assert sorted(str(n.address) for n in config.neighbors) == sorted(
        cr.node_address(i) for i in range(NODES)
    )
    assert all(n.rr_client and not n.passive for n in config.neighbors)
    assert len(extras.neighbors) == NODES


# --- the checks themselves ------------------------------------------------------------------


def _attrs(owner: str | None, next_hop: str | None = None, router_id: str | None = None) -> bytes:
    """A reflected route's attribute block as a reflector sends it."""
    nh = socket.inet_aton(next_hop or owner or cr.R_ADDR)
    block = b"\x40\x01\x01\x00" + b"\x40\x02\x00" + b"\x40\x03\x04" + nh
    block += b"\x40\x05\x04" + cr.LOCAL_PREF.to_bytes(4, "big")
    if owner is not None:
        block += b"\x80\x09\x04" + socket.inet_aton(router_id or owner)
        block += b"\x80\x0a\x04" + socket.inet_aton(cr.CLUSTER_ID)
    return block


def _fleet(n: int = 3, rid_mode: str = "address") -> cr.Fleet:
    """Nodes that hold exactly what they should (with ADD-PATH path ids)."""
    fleet = cr.Fleet(None, n, 1, rid_mode)
    rr_key = cr.block_key(cr.rr_block(0))
    for nd in fleet.nodes:
        nd.addpath_rx = True
        nd.state = cr.ESTABLISHED
        routes = [(cr.block_key(j), j) for j in range(n) if j != nd.i]
        routes.append((rr_key, None))
        for k, (key, j) in enumerate(routes):
            owner = rid = None
            if j is not None:
                owner, rid = cr.node_address(j), cr.node_router_id(j, rid_mode)
            block = _attrs(owner, router_id=rid)
            a = fleet.attrs_pool.setdefault(block, block)
            nd.held[(k + 1).to_bytes(4, "big") + key] = a
            nd.announced += 1
    fleet.established = n
    return fleet


def test_final_check_passes_on_what_a_reflector_should_send():
    c = _fleet().final_check(rr_blocks=1)
    assert c["ok"], c
    assert c["routes_checked"] == 3 * 3
    assert c["duplicates"] == 0


def test_router_ids_from_names():
    """CALICO_ROUTER_ID=hash: identifiers that are not the nodes' addresses, all distinct;
    ORIGINATOR_ID must then be the identifier, not the address."""
    ids = {cr.node_router_id(i, "hash") for i in range(cr.MAX_NODES)}
    assert len(ids) == cr.MAX_NODES
    assert not ids & {cr.node_address(i) for i in range(cr.MAX_NODES)}
    assert _fleet(rid_mode="hash").final_check(rr_blocks=1)["ok"]
    fleet = _fleet(rid_mode="hash")
    nd = fleet.nodes[0]
    key = next(k for k in nd.held if k[4:] == cr.block_key(1))
    bad = _attrs(cr.node_address(1))  # ORIGINATOR_ID = the address: wrong here
    nd.held[key] = fleet.attrs_pool.setdefault(bad, bad)
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"] and "ORIGINATOR_ID=10.192.1.2" in c["attribute_problems"][0]


def test_final_check_catches_a_changed_next_hop():
    fleet = _fleet()
    nd = fleet.nodes[0]
    key = next(k for k in nd.held if k[4:] == cr.block_key(1))
    bad = _attrs(cr.node_address(1), next_hop=cr.R_ADDR)  # next hop self: wrong for an RR
    nd.held[key] = fleet.attrs_pool.setdefault(bad, bad)
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"]
    assert c["routes_with_wrong_attributes"] == 1
    assert "NEXT_HOP=10.191.0.1" in c["attribute_problems"][0]


def test_final_check_catches_missing_extra_and_duplicate_paths():
    fleet = _fleet()
    nd = fleet.nodes[1]
    del nd.held[next(iter(nd.held))]  # a route missing
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"] and c["nodes_wrong"] == 1

    fleet = _fleet()
    nd = fleet.nodes[2]
    a = fleet.attrs_pool[_attrs(cr.node_address(2))]
    nd.held[(99).to_bytes(4, "big") + nd.own] = a  # its own block reflected back
    nd.own_seen += 1
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"] and c["own_block_reflected"] == 1

    fleet = _fleet()
    nd = fleet.nodes[0]
    key, a = next(iter(nd.held.items()))
    nd.held[(77).to_bytes(4, "big") + key[4:]] = a  # a second path for one prefix
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"] and c["prefixes_with_several_paths"] == 1


def test_final_check_catches_a_missing_cluster_list():
    fleet = _fleet()
    nd = fleet.nodes[0]
    key = next(k for k in nd.held if k[4:] == cr.block_key(2))
    bad = _attrs(cr.node_address(2))[: -len(b"\x80\x0a\x04") - 4]
    nd.held[key] = fleet.attrs_pool.setdefault(bad, bad)
    c = fleet.final_check(rr_blocks=1)
    assert not c["ok"] and c["routes_with_wrong_attributes"] == 1


# --- a small run of each reflector ----------------------------------------------------------


@pytest.mark.kernel
@pytest.mark.interop
@pytest.mark.parametrize(
    ("impl", "pool"), [("bgpd", "noencap"), ("bird", "noencap"), ("bgpd", "ipip"), ("bird", "ipip")]
)
def test_small_reflector_run(bird16, impl, pool):
    """50 nodes on a reflector in network namespaces: every node holds the 49 other blocks
    and R's with the exact attributes, R counts 50 sessions, its kernel table holds the
    pool's routes (noencap) or none (ipip: Felix's job), nothing moves while idle. About 5 s
    per case."""
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")
    args = cr.parse_args(
        ["--nodes", str(NODES), "--impl", impl, "--pool", pool, "--window", "1",
         "--quiet", "0.5", "--bird16", str(bird16), "--settle-timeout", "120"]
    )  # fmt: skip
    r = cr.run_once(impl, args)
    assert not r.get("error"), r["error"] + "\n" + r.get("log_tail", "")
    assert r["ok"], cr._short(r)
    c = r["check"]
    assert c["routes_checked"] == NODES * NODES  # 49 blocks of the others + R's, per node
    assert c["end_of_rib_received"] >= NODES
    assert r["view"]["established"] == NODES
    assert r["kernel"]["pool_routes"] == (NODES + 1 if pool == "noencap" else 0)
    assert r["window"]["updates_received"] == 0
    assert not Path(f"/run/netns/{r['namespaces']}-r").exists()

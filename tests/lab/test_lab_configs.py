"""The lab's confd (lab_calico.py) against confd's golden files, and the lab's own files
against both parsers.

1. Golden cases rebuilt from their inputs (``confd/tests/mock_data/calicoctl/<case>/
   input.yaml``, written here as lab_calico models; node ``kube-master`` with the standard
   block affinities of confd's test harness) give the golden files line for line (the
   goldens have no blank lines; neither does the generator).
2. Every file the lab runs (both profiles, every node, both families, and the files of its
   operations: a node joined, a block moved, services and filters changed) parses with
   ``bgpd-bird -p`` and with BIRD 1.6.8's ``bird -p``, and confd's staged-file check
   (``bird -p -c .bird.cfgNNNN`` in the destination directory) passes.
"""

from __future__ import annotations

import concurrent.futures
import subprocess

import lab_calico as cg
import pytest
from lab_calico import Block, Cluster, Filter, Node, Peer, Pool, Rule
from needs import skip_or_fail

GOLDEN = "calico-confd/confd/tests/compiled_templates"


def standard_blocks() -> list[Block]:
    """confd's test harness (createBlockAffinities) for host kube-master."""
    return [
        Block("10.0.0.0/30"),
        Block("10.1.0.0/24"),
        Block("10.2.0.1/32"),
        Block("192.168.221.192/26"),
        Block("192.168.221.64/26", "confirmed"),
        Block("192.168.221.0/26", "pending"),
    ]


def three_nodes(v6=(None, None, None), master_labels=None, **master) -> list[Node]:
    return [
        Node("kube-master", "10.192.0.2/16", v6[0], labels=master_labels or {},
             blocks=standard_blocks(), **master),
        Node("kube-node-1", "10.192.0.3/16", v6[1]),
        Node("kube-node-2", "10.192.0.4/16", v6[2]),
    ]  # fmt: skip


POOL4_IPIP = Pool("192.168.0.0/16", ipip="Always")
POOL4 = Pool("192.168.0.0/16")

COMMS_OPS = Filter(
    "test-filter-communities-ops",
    import_v4=[Rule("Accept", community="65000:100", set_priority=256), Rule("Reject")],
    export_v4=[
        Rule("Accept", community="65000:42", add_community="65001:200", prepend_as_path=[65000]),
        Rule("Reject"),
    ],
)
COMMS_OPS.import_v6 = COMMS_OPS.import_v4
COMMS_OPS.export_v6 = COMMS_OPS.export_v4

SINGLE = Filter(
    "test-filter",
    export_v4=[
        Rule("Accept", cidr="77.0.0.0/16"),
        Rule("Reject", cidr="77.1.0.0/16", source="RemotePeers"),
        Rule("Accept", interface="eth0", source="RemotePeers"),
        Rule("Reject"),
    ],
    import_v4=[
        Rule("Accept", cidr="44.0.0.0/16"),
        Rule("Reject", cidr="44.1.0.0/16", source="RemotePeers"),
        Rule("Accept", source="RemotePeers"),
        Rule("Reject", interface="eth*"),
    ],
    export_v6=[
        Rule("Accept", cidr="9000::0/64"),
        Rule("Reject", cidr="9000:1::0/64", source="RemotePeers", interface="vxlan.calico"),
        Rule("Accept", source="RemotePeers"),
        Rule("Reject"),
    ],
    import_v6=[
        Rule("Accept", cidr="5000::0/64", interface="*.calico"),
        Rule("Reject", cidr="5000:1::0/64", source="RemotePeers"),
        Rule("Accept", source="RemotePeers"),
        Rule("Reject"),
    ],
)

OPERATORS = Filter(
    "test-filter-match-operators",
    **{
        f"{d}_v{v}": [
            Rule("Accept", cidr=c[0], operator="In"),
            Rule("Reject", cidr=c[1], operator="NotIn"),
            Rule("Accept", cidr=c[2], operator="Equal"),
            Rule("Reject", cidr=c[3], operator="NotEqual"),
        ]
        for (d, v), c in {
            ("export", 4): [f"77.{i}.0.0/16" for i in range(4)],
            ("import", 4): [f"44.{i}.0.0/16" for i in range(4)],
            ("export", 6): ["9000:0::0/64", "9000:1::0/64", "9000:2::0/64", "9000:3::0/64"],
            ("import", 6): ["5000:0::0/64", "5000:1::0/64", "5000:2::0/64", "5000:3::0/64"],
        }.items()
    },
)

ASPATH_PRIO = Filter(
    "test-filter-aspath-prio",
    import_v4=[
        Rule("Accept", as_path_prefix=[65000], set_priority=100),
        Rule("Accept", as_path_prefix=[65000, 65001], set_priority=200),
        Rule("Accept"),
    ],
    export_v4=[
        Rule("Accept", priority=100, add_community="65000:100"),
        Rule("Accept", priority=200, prepend_as_path=[65000, 65001]),
        Rule("Reject"),
    ],
    import_v6=[Rule("Accept", as_path_prefix=[65000], set_priority=100), Rule("Accept")],
    export_v6=[Rule("Accept", priority=100, add_community="65000:100"), Rule("Reject")],
)


def _global_filter_peer(filter_name: str) -> Peer:
    return Peer("p", peer_selector="has(global-peer)", filters=[filter_name])


def _filter_nodes() -> list[Node]:
    v6 = ("2001::102/64", "2001::103/64", "2001::104/64")
    nodes = three_nodes(v6)
    for n in nodes:
        n.labels["global-peer"] = "yes"
    return nodes


# the golden directory and its model; the files compared (all six unless listed)
CASES = {
    "mesh/communities": (
        Cluster(
            listen_port=177,
            communities={"bgp-comm-standard": "100:6532", "bgp-comm-large": "100:555:107"},
            prefix_advertisements=[
                ("192.168.0.0/16", ["bgp-comm-standard", "5663:12", "bgp-comm-large"]),
                ("fd00:96::/112", ["bgp-comm-large", "bgp-comm-large"]),
            ],
            pools=[POOL4],
            nodes=three_nodes(),
        ),
        None,
    ),
    "mesh/restart-time": (
        Cluster(
            mesh_restart_time=10,
            pools=[POOL4, Pool("2002::/64")],
            nodes=three_nodes(("2001::103/64", "2001::102/64", "2001::104/64")),
        ),
        None,
    ),
    "mesh/static-routes": (
        Cluster(
            service_cluster_ips=["10.101.0.0/16", "fd00:96::/112"],
            service_lb_ips=["80.15.0.0/24"],
            service_ips={"10.101.0.101": ["kube-master"], "fd00:96::28": ["kube-master"]},
            pools=[POOL4_IPIP],
            nodes=three_nodes(("fdf5:10::2/112", "fdf5:10::3/112", "fdf5:10::4/112")),
        ),
        None,
    ),
    "explicit_peering/route_reflector": (
        Cluster(
            asn=64532,
            mesh=False,
            peers=[
                Peer("bgppeer-1", "172.19.4.87", 64533, node_selector="has(routeReflector)"),
                Peer("bgppeer-v6", "[ac13::57]:50", 64533, node_selector="has(routeReflector)"),
                Peer(
                    "bgppeer-other-nodes",
                    node_selector="has(routeReflector)",
                    peer_selector="!has(routeReflector)",
                ),
            ],
            pools=[POOL4_IPIP],
            nodes=three_nodes(
                ("fe0a::2/96", "fe0a::3/96", "fe0a::4/96"),
                master_labels={"routeReflector": "true"},
                rr_cluster_id="10.0.0.1",
            ),
        ),
        None,
    ),
    "explicit_peering/keepnexthop": (
        Cluster(
            asn=64532,
            mesh=False,
            peers=[
                Peer(
                    "bgppeer-1",
                    "172.19.4.87",
                    64533,
                    node_selector="has(routeReflector)",
                    keep_original_next_hop=True,
                ),
                Peer(
                    "bgppeer-v6",
                    "[ac13::57]:50",
                    64533,
                    node_selector="has(routeReflector)",
                    keep_original_next_hop=True,
                ),
                Peer(
                    "bgppeer-other-nodes",
                    node_selector="all()",
                    peer_selector="has(routeReflector)",
                ),
            ],  # fmt: skip
            pools=[POOL4_IPIP],
            nodes=three_nodes(
                ("fe0a::2/96", None, None),
                master_labels={"routeReflector": "true"},
                rr_cluster_id="10.0.0.1",
            ),
        ),
        None,
    ),
    "explicit_peering/local-as": (
        Cluster(
            mesh=False,
            peers=[
                Peer(
                    "bgppeer-1",
                    "10.192.0.3",
                    64512,
                    local_asn=64512,
                    node="kube-master",
                    num_allowed_local_as=1,
                ),
                Peer("bgppeer-2", "10.192.0.4", 64566, local_asn=65001, node="kube-master"),
            ],  # fmt: skip
            pools=[POOL4_IPIP],
            nodes=three_nodes(),
        ),
        None,
    ),
    "explicit_peering/global-ipv6": (
        Cluster(
            asn=64567,
            mesh=False,
            debug="debug",
            peers=[
                Peer("bgppeer-1", "2001::102", 64567, source_address="None"),
                Peer("bgppeer-2", "2001::104", 64567),
            ],
            pools=[POOL4_IPIP, Pool("2002::/64")],
            nodes=[
                Node("kube-master", "10.192.0.2/16", "2001::103/64", blocks=standard_blocks()),
                Node("kube-node-1", "10.192.0.3/16", "2001::102/64"),
                Node("kube-node-2", "10.192.0.1/16", "2001::104/64"),
            ],
        ),
        None,
    ),
    "bgpfilter/communities_and_operations": (
        Cluster(
            mesh=False,
            filters=[COMMS_OPS],
            peers=[_global_filter_peer(COMMS_OPS.name)],
            nodes=_filter_nodes(),
        ),
        ("bird.cfg", "bird6.cfg"),
    ),
    "bgpfilter/single_filter/global_peer": (
        Cluster(
            mesh=False,
            filters=[SINGLE],
            peers=[_global_filter_peer(SINGLE.name)],
            nodes=_filter_nodes(),
        ),
        ("bird.cfg", "bird6.cfg"),
    ),
    "bgpfilter/match_operators": (
        Cluster(
            mesh=False,
            filters=[OPERATORS],
            peers=[_global_filter_peer(OPERATORS.name)],
            nodes=_filter_nodes(),
        ),
        ("bird.cfg", "bird6.cfg"),
    ),
    "bgpfilter/as_path_and_priority": (
        Cluster(
            mesh=False,
            filters=[ASPATH_PRIO],
            peers=[_global_filter_peer(ASPATH_PRIO.name)],
            nodes=_filter_nodes(),
        ),
        ("bird.cfg", "bird6.cfg"),
    ),
}


def _golden_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_generator_gives_the_golden_files(shared_corpora, case):
    cluster, only = CASES[case]
    gdir = shared_corpora / GOLDEN / case
    if not gdir.is_dir():
        skip_or_fail(f"{gdir} absent")
    mine = {**cg.render(cluster, "kube-master", 4), **cg.render(cluster, "kube-master", 6)}
    names = only or sorted(mine)
    for name in names:
        golden = _golden_lines((gdir / name).read_text())
        got = _golden_lines(mine[name])
        assert got == golden, (
            f"{case}/{name} differs:\n"
            + "\n".join(
                f"{i}: golden {g!r}\n{i}:   mine {m!r}"
                for i, (g, m) in enumerate(zip(golden + [""] * 9, got + [""] * 9, strict=False))
                if g != m
            )[:3000]
        )


def test_selectors():
    labels = {"rack": "a", "route-reflector": "true"}
    assert cg.selects("all()", {})
    assert cg.selects("has(route-reflector)", labels)
    assert not cg.selects("!has(route-reflector)", labels)
    assert cg.selects("rack == 'a' && has(route-reflector)", labels)
    assert not cg.selects("rack != 'a'", labels)
    assert not cg.selects(None, labels)
    with pytest.raises(ValueError):
        cg.selects("rack in {'a'}", labels)


def _lab_file_sets():
    """(label, family, {filename: text}) for every distinct file set the lab writes."""
    import lab_cluster

    seen = set()
    for profile in lab_cluster.PROFILES:
        for label, cluster in lab_cluster.config_variants(profile):
            for node in cluster.nodes:
                for family in (4, 6):
                    files = cg.render(cluster, node.name, family)
                    key = (family, tuple(sorted(files.items())))
                    if key not in seen:
                        seen.add(key)
                        yield f"{profile}/{label}/{node.name}/v{family}", family, files


def test_lab_files_parse_with_both(bird16, tmp_path):
    """Each distinct file set (58 of them) parses with ``bgpd-bird -p`` and BIRD 1.6.8's
    ``bird -p``; confd's staged copy of the main file is accepted in its directory."""
    import lab_net

    sets = list(_lab_file_sets())
    checks = []  # (label, argv, directory)
    for label, family, files in sets:
        d = tmp_path / label.replace("/", "_")
        d.mkdir()
        for name, text in files.items():
            (d / name).write_text(text)
        assert "krt_tunnel" not in "".join(files.values()), label
        main = cg.CONFIG_NAMES[family][0]
        staged = f".{main}1234"  # confd's check: the staged copy, includes beside it
        (d / staged).write_text(files[main])
        ours = lab_net.BGPD_BIRD6 if family == 6 else lab_net.BGPD_BIRD
        theirs = str(bird16 / ("bird6" if family == 6 else "bird"))
        for argv in ([ours, "-p", "-c", staged], [theirs, "-p", "-c", main]):
            checks.append((label, argv, d))

    def check(job):
        label, argv, d = job
        r = subprocess.run(argv, cwd=d, capture_output=True, text=True, timeout=60)
        return label, argv, r

    # a few at a time: each is a process start (bgpd-bird's is Python's, about 0.2 s)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for label, argv, r in pool.map(check, checks):
            assert r.returncode == 0, f"{label}: {argv[0]} -p: {r.stderr}"
    assert len(checks) == 2 * len(sets)
    assert len(sets) >= 24

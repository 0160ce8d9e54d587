"""What upstream BIRD 1.6.8 cannot show: the semantics of Calico's fork, and the route
preference rule Calico's filters build on, checked on the running daemon.

* ``krt_tunnel`` (CALICO.md §2): bgpd runs the golden ``cluster_routes/enabled`` unchanged
  (the fork's text: ``krt_tunnel="tunl0"`` for the IPIP Always pool 192.168.0.0/16, and
  CrossSubnet for 172.16.0.0/16: ``""`` when the BGP next hop is in the node's subnet
  10.192.0.0/16) with the mesh confd writes; ``tunl0`` is a veth (this kernel has no ipip).
  A route the filter marks is installed ``via <BGP next hop> dev tunl0 onlink`` (not the
  resolved gateway), reprogrammed when the mark flips with the next hop, and an ECMP route
  keeps the tunnel on every next hop (the fork loses it there: projectcalico/bird#90).
* preference (CALICO.md §5): a remote copy of a local workload's /32 with a priority
  metric below 1024 (LOCAL_PREF 2^31-1-511) gets preference 200 and metric 511: it wins
  over the workload route Felix made (metric 1024), in the RIB and in the kernel, in BIRD
  and in bgpd alike; withdrawn, the local route is used again.
"""

from __future__ import annotations

import subprocess
import time

from harness import EVERYWHERE, Run, case_files, diff, explain
from inputs import MAXLP, Step

CLUSTER = "cluster_routes/enabled"
MESH = "mesh/ipip-cross-subnet"  # its protocol bgp blocks: Mesh_10_192_0_3, Mesh_10_192_0_6
P3, P6 = "Mesh_10_192_0_3", "Mesh_10_192_0_6"


def _route(prefix: str, next_hop: str, lp: int = MAXLP - 1024) -> dict:
    return {"prefix": prefix, "next_hop": next_hop, "as_path": [], "local_pref": lp}


def _wait_kernel(run: Run, side: str, want: set, gone: set = frozenset(), timeout=20.0) -> list:
    """The side's kernel table once every line of ``want`` is in it and no route of ``gone``
    (prefixes) is; the last table seen at the timeout."""
    s = run.sides[side]
    deadline = time.monotonic() + timeout
    while True:
        table = s.observe().kernel
        have = set(table)
        prefixes = {line.split()[1] for line in table if " proto bird " in line}
        if want <= have and not (gone & prefixes):
            return table
        if time.monotonic() > deadline:
            return table
        time.sleep(0.2)


def test_krt_tunnel_as_the_fork_programs_it(goldens, bird16, netns_ok):
    files = case_files(goldens / CLUSTER, False, goldens / MESH, fork=True)
    assert 'krt_tunnel="tunl0"' in files["bird_ipam.cfg"]
    run = Run(files, False, bird16, default_route=True, sides=("bgpd",))
    failed = True
    try:
        run.start()
        run.settle()
        # 10.50.0.0/16 is behind the default route (another subnet: IPIP for CrossSubnet)
        run.apply(
            Step(
                "announce",
                announce={
                    P3: [
                        _route("192.168.200.0/26", "10.192.0.3"),  # Always: tunnel
                        _route("192.168.201.0/26", "10.192.0.3"),  # ECMP, both tunnelled
                        _route("172.16.200.0/26", "10.192.0.3"),  # same subnet: no tunnel
                        _route("172.16.201.0/26", "10.50.0.3"),  # other subnet: tunnel
                    ],
                    P6: [_route("192.168.201.0/26", "10.192.0.6")],
                },
            )
        )
        onlink = "proto bird scope global metric 1024 flags onlink"
        want = {
            f"unicast 192.168.200.0/26 via 10.192.0.3 dev tunl0 {onlink}",
            "unicast 192.168.201.0/26 proto bird scope global metric 1024"
            " nexthop via 10.192.0.3 dev tunl0 weight 1 flags onlink"
            " nexthop via 10.192.0.6 dev tunl0 weight 1 flags onlink",
            "unicast 172.16.200.0/26 via 10.192.0.3 dev eth0 proto bird scope global metric 1024",
            f"unicast 172.16.201.0/26 via 10.50.0.3 dev tunl0 {onlink}",
        }
        table = _wait_kernel(run, "bgpd", want)
        assert want <= set(table), "\n".join(sorted(want - set(table)) + ["--- have:", *table])

        # the next hops change subnet: the tunnel mark flips, the routes are reprogrammed
        run.apply(
            Step(
                "flip",
                announce={
                    P3: [
                        _route("172.16.200.0/26", "10.50.0.3"),
                        _route("172.16.201.0/26", "10.192.0.3"),
                    ]
                },
            )
        )
        flipped = {
            f"unicast 172.16.200.0/26 via 10.50.0.3 dev tunl0 {onlink}",
            "unicast 172.16.201.0/26 via 10.192.0.3 dev eth0 proto bird scope global metric 1024",
        }
        table = _wait_kernel(run, "bgpd", flipped)
        assert flipped <= set(table), "\n".join(sorted(flipped - set(table)) + ["---", *table])
        mine = [x for x in table if x.split()[1] in ("172.16.200.0/26", "172.16.201.0/26")]
        assert len(mine) == 2, mine  # replaced, not added beside the old ones

        # one path left: the multipath route becomes a single tunnelled one
        run.apply(Step("ecmp-down", withdraw={P6: [{"prefix": "192.168.201.0/26"}]}))
        single = {f"unicast 192.168.201.0/26 via 10.192.0.3 dev tunl0 {onlink}"}
        table = _wait_kernel(run, "bgpd", single)
        assert single <= set(table), table
        failed = False
    finally:
        if failed:
            print(run.logs())
        run.close(keep=failed)


def _route_get(run: Run, side: str, addr: str) -> str:
    node = run.sides[side].node
    out = subprocess.run(
        ["ip", "-n", node, "route", "get", addr], capture_output=True, text=True, check=True
    )
    return out.stdout.split("\n")[0]


def test_remote_priority_route_beats_local_workload(goldens, bird16, netns_ok):
    files = case_files(goldens / CLUSTER, False, goldens / MESH, fork=False)
    run = Run(files, False, bird16)
    failed = True
    try:
        run.start()
        plan = run.plan
        w1 = plan.workloads["w1"]  # dev cali1 metric 1024; Mesh_10_192_0_3 has it at 511
        addr = w1.split("/")[0]
        first = plan.peers[0]
        assert first.name == P3
        assert any(r["prefix"] == w1 and r["local_pref"] == MAXLP - 511 for r in first.routes)
        obs = run.settle()
        remote = f"unicast {addr} via 10.192.0.3 dev eth0 proto bird scope global metric 511"
        local = f"unicast {addr} dev cali1 proto boot scope link metric 1024"
        for side, o in obs.items():
            assert remote in o.kernel and local in o.kernel, (side, o.kernel)
            assert "via 10.192.0.3 dev eth0" in _route_get(run, side, addr), side
        rest, _ = explain(diff(obs["bird"], obs["bgpd"]), EVERYWHERE)
        assert not rest, "\n".join(map(str, rest))
        # in bgpd's RIB: the BGP route is best, the workload route lost on preference
        shown = run.bgpd_json("show", "routes", w1)
        (route,) = shown["routes"]
        best = [p for p in route["paths"] if p["best"]]
        assert best and best[0]["source"] == "bgp" and best[0]["local_pref"] == MAXLP - 511
        kernel = [p for p in route["paths"] if p["source"] == "kernel"]
        assert kernel and kernel[0]["lost_at"] == "preference", route

        # withdrawn: the local workload route carries the traffic again, in both
        run.apply(Step("withdraw", withdraw={P3: [{"prefix": w1}]}))
        obs = run.settle()
        for side, o in obs.items():
            assert remote not in o.kernel and local in o.kernel, (side, o.kernel)
            assert "dev cali1" in _route_get(run, side, addr), side
        rest, _ = explain(diff(obs["bird"], obs["bgpd"]), EVERYWHERE)
        assert not rest, "\n".join(map(str, rest))
        failed = False
    finally:
        if failed:
            print(run.logs())
        run.close(keep=failed)

"""Differential tests: BIRD 1.6.8 and ``bgpd run --bird`` on confd's golden configurations.

For each case, both daemons run the same files (the fork's ``krt_tunnel`` made a no-op, as
upstream BIRD lacks it) in identical namespaces with identical inputs (inputs.py), and must
produce the same kernel table and send each peer the same routes with the same attributes,
first after the start, then after a churn step (workloads come and go, peers withdraw and
change routes). A difference fails the case, printed as ``BIRD only`` / ``bgpd only``
lines; the deliberate ones are in docs/bird.md ("Differences from BIRD 1.6.8"), each
declared by the case that meets it (``known``) and checked to still be there.

Run one case: ``pytest -q tests/birddiff -k 'v4-mesh/communities'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from harness import EVERYWHERE, KNOWN, Run, case_files, diff, explain
from inputs import churn

# BGPD_BIRDDIFF_EXPLORE=1: every known difference applies to every case and none is required
# (to look for new differences across all cases at once)
EXPLORE = os.environ.get("BGPD_BIRDDIFF_EXPLORE", "") not in ("", "0")


@dataclass(frozen=True)
class Case:
    golden: str
    ipv6: bool = False
    splice: str | None = None  # a golden whose ``protocol bgp`` blocks are added (peers)
    default_route: bool = False  # the host has a default route (every next hop resolves)
    ignore_peers: tuple = ()  # protocols bgpd does not run (docs/bird.md, differences)
    known: tuple = ()  # deliberate differences this case meets (harness.KNOWN, docs/bird.md)
    no_local_pref: bool = False  # the churn step has an iBGP route without LOCAL_PREF

    @property
    def id(self) -> str:
        extra = f"+{self.splice.split('/')[-1]}" if self.splice else ""
        return f"{'v6' if self.ipv6 else 'v4'}-{self.golden}{extra}"


CASES = [
    # node-to-node mesh (passive on the higher addresses)
    Case("mesh/ipip-cross-subnet"),
    Case("mesh/bgp-export", default_route=True),
    Case(
        "mesh/communities",
        no_local_pref=True,
        known=("unresolved-next-hop", "ibgp-without-local-pref"),
    ),
    Case("mesh/vxlan-always"),
    Case("mesh/route-reflector-mesh-enabled"),
    Case("mesh/ipip-off", ipv6=True),
    # service advertisement: static blackholes exported, never installed
    Case("mesh/static-routes"),
    Case("mesh/static-routes", ipv6=True),
    # route reflector: clients, a ToR over eBGP (IPv6: on port 50)
    Case(
        "explicit_peering/route_reflector",
        no_local_pref=True,
        known=("ibgp-without-local-pref",),
    ),
    Case("explicit_peering/route_reflector", ipv6=True),
    # ToR and explicit peers: eBGP, next hop keep/self, local as, reachableBy, GTSM
    Case("explicit_peering/keepnexthop"),
    # two sessions to one address on two ports: bgpd runs the first only (docs/bird.md)
    Case("explicit_peering/global-external", ignore_peers=("Global_10_192_0_4_port_166",)),
    Case("explicit_peering/local-as"),
    Case("explicit_peering/global-ipv6", ipv6=True),
    Case(
        "next_hop_mode/route_reflectors",
        default_route=True,  # and a ToR announces a default route: BIRD's shadows it
        known=("next-hop-through-bgp-route",),
    ),
    Case("reachable_by/global_peers"),
    Case("ttl_security/explicit_node"),
    # BGPFilter import/export
    Case("bgpfilter/single_filter/explicit_peer"),
    Case("bgpfilter/match_operators"),
    Case("bgpfilter/communities_and_operations"),
    Case("bgpfilter/as_path_and_priority"),
    Case("bgpfilter/kubevirt_live_migration"),
    Case("bgpfilter/peer_type"),
    Case("bgpfilter/large_community", ipv6=True),
    # IPIP CrossSubnet and cluster routes programmed by BIRD (krt_tunnel stripped), with the
    # mesh confd writes when it is on
    Case("cluster_routes/enabled", splice="mesh/ipip-cross-subnet"),
    Case("cluster_routes/ipip-only", splice="mesh/ipip-cross-subnet", default_route=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bird_and_bgpd_agree(case: Case, goldens, bird16, netns_ok):
    src = goldens / case.golden
    files = case_files(src, case.ipv6, goldens / case.splice if case.splice else None, fork=False)
    run = Run(files, case.ipv6, bird16, default_route=case.default_route)
    failed = True
    try:
        run.start()
        plan = run.plan
        findings = []
        explained: set = set()
        known = tuple(KNOWN) if EXPLORE else tuple(dict.fromkeys(EVERYWHERE + case.known))
        for step in (None, churn(plan, case.no_local_pref)):
            name = "start" if step is None else step.name
            if step is not None:
                run.apply(step)
            obs = run.settle(ignore_peers=case.ignore_peers)
            bird, bgpd = obs["bird"], obs["bgpd"]
            # not vacuous: the sessions are up, routes went both ways
            for peer, st in bird.peers.items():
                if peer in case.ignore_peers:
                    continue
                assert st["state"] == "Established", f"{name}: BIRD's {peer}: {st}"
            assert any(" proto bird " in r for r in bird.kernel), f"{name}: BIRD installed nothing"
            for peer in case.ignore_peers:  # still a difference: BIRD runs it, bgpd does not
                assert bird.peers[peer]["state"] == "Established", (name, peer)
                assert bgpd.peers[peer]["established"] == 0, (name, peer)
            rest, hits = explain(diff(bird, bgpd, case.ignore_peers), known)
            explained |= hits
            findings += [f"[{name}] {d}" for d in rest]
        assert not findings, "BIRD 1.6.8 and bgpd differ:\n" + "\n".join(findings)
        # a declared difference that no longer shows is stale: the case must say so
        assert EXPLORE or explained >= set(case.known), (
            f"known differences not seen: {set(case.known) - explained}"
        )
        failed = False
    except Exception:
        print(run.logs())
        raise
    finally:
        run.close(keep=failed)

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

import concurrent.futures
import os
import time
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
    # the export filters let nothing out to these peers (say why): compared all the same
    sends_nothing: str = ""

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
    Case(
        "explicit_peering/route_reflector",
        ipv6=True,
        sends_nothing="no IPv6 pool: calico_export_to_bgp_peers accepts nothing",
    ),
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
    Case(
        "bgpfilter/communities_and_operations",
        sends_nothing="iBGP peers; the export BGPFilter wants a community only BGP routes have",
    ),
    Case("bgpfilter/as_path_and_priority"),
    Case("bgpfilter/kubevirt_live_migration"),
    Case(
        "bgpfilter/peer_type",
        sends_nothing="iBGP peers; the export BGPFilter accepts for eBGP peers only",
    ),
    Case(
        "bgpfilter/large_community",
        ipv6=True,
        sends_nothing="iBGP peers; the export BGPFilter wants a large community",
    ),
    # IPIP CrossSubnet and cluster routes programmed by BIRD (krt_tunnel stripped), with the
    # mesh confd writes when it is on
    Case("cluster_routes/enabled", splice="mesh/ipip-cross-subnet"),
    Case("cluster_routes/ipip-only", splice="mesh/ipip-cross-subnet", default_route=True),
]


@dataclass
class Outcome:
    """What one case found: the unexplained differences, the known ones that showed, the
    error that stopped it (a session that never came up...) and the daemons' last logs."""

    findings: list
    explained: set
    error: str | None = None
    logs: str = ""
    seconds: float = 0.0


def run_case(case: Case, goldens, sbin) -> Outcome:
    """Both daemons on the case's files, the start and the churn step compared."""
    t0 = time.monotonic()
    src = goldens / case.golden
    files = case_files(src, case.ipv6, goldens / case.splice if case.splice else None, fork=False)
    run = Run(files, case.ipv6, sbin, default_route=case.default_route)
    out = Outcome([], set())
    known = tuple(KNOWN) if EXPLORE else tuple(dict.fromkeys(EVERYWHERE + case.known))
    try:
        run.start()
        for step in (None, churn(run.plan, case.no_local_pref)):
            name = "start" if step is None else step.name
            if step is not None:
                run.apply(step)
            obs = run.settle(ignore_peers=case.ignore_peers)
            bird, bgpd = obs["bird"], obs["bgpd"]
            # not vacuous: the sessions are up, routes went both ways
            for peer, st in bird.peers.items():
                if peer not in case.ignore_peers:
                    assert st["state"] == "Established", f"{name}: BIRD's {peer}: {st}"
            assert any(" proto bird " in r for r in bird.kernel), f"{name}: BIRD installed nothing"
            sent = any(st["rib"] for st in bird.peers.values())
            assert sent or not bird.peers or case.sends_nothing, f"{name}: BIRD sent nothing"
            assert not (sent and case.sends_nothing), f"{name}: BIRD sent something after all"
            for peer in case.ignore_peers:  # still a difference: BIRD runs it, bgpd does not
                assert bird.peers[peer]["state"] == "Established", (name, peer)
                assert bgpd.peers[peer]["established"] == 0, (name, peer)
            rest, hits = explain(diff(bird, bgpd, case.ignore_peers), known)
            out.explained |= hits
            out.findings += [f"[{name}] {d}" for d in rest]
    except Exception as e:  # reported by the test, with the logs
        out.error = f"{type(e).__name__}: {e}"
    finally:
        if out.error or out.findings:
            out.logs = f"{run.logs()}\n(configs, inputs and logs kept in {run.tmp})"
        run.close(keep=bool(out.error or out.findings))
        out.seconds = time.monotonic() - t0
    return out


@pytest.fixture(scope="session")
def outcomes(request, goldens, bird16, netns_ok):
    """The selected cases, run a few at a time in threads (each case spends most of its time
    waiting for the daemons: BIRD's 2 s kernel scan, connect delays, the quiet period), so
    that the whole module takes about a minute and a half: five at a time (a case uses
    about a third of a core on average; tried under a load of 3-5 on the 2-core VM);
    BGPD_BIRDDIFF_JOBS=1 runs them one by one. Each test waits for its own case's outcome."""
    selected = []
    for item in request.session.items:
        cs = getattr(item, "callspec", None)
        if cs is not None and isinstance(cs.params.get("case"), Case):
            selected.append(cs.params["case"])
    jobs = max(1, int(os.environ.get("BGPD_BIRDDIFF_JOBS", "5")))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    futures = {c.id: pool.submit(run_case, c, goldens, bird16) for c in selected}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bird_and_bgpd_agree(case: Case, outcomes):
    out = outcomes[case.id].result()
    if out.error or out.findings:
        print(out.logs)
    assert out.error is None, out.error
    assert not out.findings, "BIRD 1.6.8 and bgpd differ:\n" + "\n".join(out.findings)
    # a declared difference that no longer shows is stale: the case must say so
    assert EXPLORE or out.explained >= set(case.known), (
        f"known differences not seen: {set(case.known) - out.explained}"
    )

"""What the scenarios share: ToR and node queries, probes over several flows, a node's
daemons restarted as runit restarts them."""

from __future__ import annotations

import re
import time

import lab_cluster as lc
import lab_net
from lab_figures import loss, record

POD = {p.key: p for p in lc.pods()}
LEAVE_WAIT = 20  # s: how long the node-leave scenario waits for tor1 to drop n4's routes


def pod_ns(lab, key: str) -> str:
    return lab.pod_ns(POD[key])


def tor_routes(lab, tor: str, prefix: str) -> str:
    return lab.birdc(tor, "show", "route", prefix, "all")


def vias(text: str) -> list[str]:
    """The next hops of ``birdc show route ... all`` (BIRD 2), one per path."""
    return re.findall(r"^\s+via (\S+) on ", text, re.M)


def protocols(lab, node: str, family: int) -> dict[str, tuple[str, str]]:
    """{BGP protocol: (state, since)} of a node's daemon."""
    out = {}
    for row in lab_net.query(lab.sock(node, family), "show protocols"):
        f = row[5:].split() if row[:4].isdigit() else row.split()
        if len(f) >= 5 and f[1] == "BGP":
            out[f[0]] = (f[3], f[4])
    return out


def run_flows(lab, flows: dict[str, tuple[str, list[str]]], name: str):
    """Start one probe per source namespace; returns {flow label: (probe, target)}."""
    probes = {}
    by_src: dict[str, list[tuple[str, str]]] = {}
    for label, (src, targets) in flows.items():
        for t in targets:
            by_src.setdefault(src, []).append((label, t))
    out = {}
    for i, (src, items) in enumerate(by_src.items()):
        p = lab.probe(src, [t for _, t in items], f"{name}-{i}")
        probes[src] = p
        for label, t in items:
            out[(label, t)] = p
    for p in probes.values():
        p.wait_flowing()
    return out


def stop_flows(handles) -> dict:
    results = {}
    done = {}
    for (label, t), p in handles.items():
        if id(p) not in done:
            done[id(p)] = p.stop()
        results[(label, t)] = done[id(p)][t]
    return results


def fam(addr: str) -> str:
    return "v6" if ":" in addr else "v4"


def restart_node(lab, node: str, sig: int, scenario: str, assert_zero: bool, flows) -> dict:
    """``node``'s bird and bird6 stopped with ``sig``, started again a second later with
    -R (runit); the probes of ``flows`` run throughout, until the sessions are up, the
    recovery is over and BIRD's kernel scan is behind us. ``assert_zero``: bgpd-bird must
    lose nothing (BIRD 1.6.8's figures are the reference: recorded, not asserted)."""
    h = run_flows(lab, flows, scenario.replace(" ", "-"))
    t0 = time.time()
    try:
        lab.stop_node(node, sig)
        time.sleep(1.0)  # runit restarts it a second later
        t1 = time.time()
        lab.start_node(node, restart=True)
        lab_net.wait_until(lab.sessions_up, 90, "sessions back")

        def recovered() -> bool:
            for f in (4, 6):
                try:
                    lines = lab_net.query(lab.sock(node, f), "show status")
                except OSError:
                    return False
                if any(x.startswith("0024") for x in lines):
                    return False
            return True

        lab_net.wait_until(recovered, 60, "the graceful-restart recovery over")
        t_up = time.time() - t1
        time.sleep(3.0)  # BIRD's kernel scan (2 s) after the recovery
    finally:
        results = stop_flows(h)
    record(lab, scenario, "sessions up, recovery over", {"ms": round(t_up * 1000)})
    out = {}
    for (label, t), res in results.items():
        fig = out[(label, t)] = loss(res, t0)
        if assert_zero and fig["lost"] and lab.kind == "bird16":
            # the reference itself lost traffic (BIRD 1.6.8's graceful-restart race when
            # both ends connect, README): recorded, not a failure of the lab
            fig["note"] = "BIRD 1.6.8's own loss"
        record(lab, scenario, f"{label} {fam(t)}", fig)
        if assert_zero and lab.kind == "bgpd":
            assert fig["lost"] == 0, (label, t, fig)
        else:  # the traffic came back
            assert res["received"] > 0, (label, t, fig)
    return out

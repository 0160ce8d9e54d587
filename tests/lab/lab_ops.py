"""What the scenarios share: ToR and node queries, probes over several flows, a node's
daemons restarted as runit restarts them."""

from __future__ import annotations

import re
import time

import lab_cluster as lc
import lab_net
from lab_figures import FIGURES, loss, record

POD = {p.key: p for p in lc.pods()}
LEAVE_WAIT = 20  # s: how long the node-leave scenario waits for tor1 to drop n4's routes
# s: tor1 must have dropped them by then. A Cease from the node's SIGTERM drops them at
# once (BIRD 1.6.8: tens of ms, bgpd-bird a little more, its stop closing the kernel side
# first); "a couple of seconds" leaves room for a busy machine, and is far below the 10 s
# restart time a graceful stop would let tor1 keep them for
LEAVE_DROP = 2.0


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


# bgpd-bird after SIGTERM, as BIRD 1.6.8: its neighbours drop the node's routes at once and
# the traffic to its pods is lost until it is back. It may lose this many echoes (10 ms
# apart) more than BIRD 1.6.8 did in the same scenario and flow: 6 s. Why: in Calico's
# mesh the node with the higher address connects (the lower one is ``passive on``), so
# most of a restarted node's sessions come when its peers, which took the Cease, connect
# again: ``connect delay time`` (2 s) after it, then every ``connect retry time`` (5 s).
# runit starts the daemon again a second after it exited; BIRD 1.6.8 listens a few
# milliseconds later and takes that first attempt, bgpd-bird is a Python process that
# needs about a second (up to two on the lab's busy two cores) and often misses it, and
# those sessions then come one connect retry time (5 s) later; plus 1 s for the start
# itself.
LOSS_MARGIN = 600

GRACEFUL = "graceful restart"  # restart_node: ``birdcl graceful restart`` instead of a signal


def restart_node(lab, node: str, how, scenario: str, expect: str, flows) -> dict:
    """``node``'s bird and bird6 stopped (``how``: a signal, or :data:`GRACEFUL` for
    ``birdcl graceful restart``), started again a second later with -R (runit); the
    probes of ``flows`` run throughout, until the sessions are up, the recovery is over
    and BIRD's kernel scan is behind us. ``expect``:

    * ``"zero"``: bgpd-bird must lose nothing (BIRD 1.6.8's figures are the reference:
      recorded, not asserted);
    * ``"as bird"``: each flow of bgpd-bird loses no more than BIRD 1.6.8's did in the same
      scenario (run first: the fixtures' order) plus :data:`LOSS_MARGIN`.

    BIRD 1.6.8 has no ``graceful restart``: its client refuses the command and the daemons
    keep running; that is recorded, nothing is restarted."""
    h = run_flows(lab, flows, scenario.replace(" ", "-"))
    t0 = time.time()
    try:
        if how == GRACEFUL:
            said = lab.graceful_restart_node(node)
            if lab.kind == "bird16":
                for family, text in said.items():
                    assert "No such command" in text, (family, text)
                assert lab.sessions_up(), "BIRD 1.6.8 kept running"
                record(lab, scenario, "sessions up, recovery over",
                       {"ms": None, "note": "no such command in BIRD 1.6.8"})  # fmt: skip
                return {}
            for family, text in said.items():
                assert "Graceful restart requested" in text, (family, text)
        else:
            lab.stop_node(node, how)
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
        flow = f"{label} {fam(t)}"
        fig = out[(label, t)] = loss(res, t0)
        if expect == "zero" and fig["lost"] and lab.kind == "bird16":
            # the reference itself lost traffic (BIRD 1.6.8's graceful-restart race when
            # both ends connect, README): recorded, not a failure of the lab
            fig["note"] = "BIRD 1.6.8's own loss"
        bird = FIGURES.get((lab.profile, scenario, flow), {}).get("bird16")
        if expect == "as bird" and lab.kind == "bgpd" and bird is None:
            fig["note"] = "BIRD 1.6.8 not run: not compared"  # a partial run (-k)
        record(lab, scenario, flow, fig)
        if expect == "zero" and lab.kind == "bgpd":
            assert fig["lost"] == 0, (label, t, fig)
        else:  # the traffic came back
            assert res["received"] > 0, (label, t, fig)
        if expect == "as bird" and lab.kind == "bgpd":
            # as BIRD's, the neighbours dropped the node's routes (a Cease, not a graceful
            # stop): the traffic stopped until it was back
            assert fig["lost"] > 0, (flow, "the neighbours kept the routes", fig)
            if bird is not None:
                assert fig["lost"] <= bird["lost"] + LOSS_MARGIN, (flow, fig, "BIRD:", bird)
    return out

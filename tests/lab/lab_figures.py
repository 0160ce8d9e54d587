"""What the cluster lab measures, and the table it prints (tests/lab/README.md)."""

from __future__ import annotations

import os

import lab_cluster as lc
import lab_net
import pytest

FULL = os.environ.get("BGPD_LAB_FULL", "") not in ("", "0")
full = pytest.mark.skipif(not FULL, reason="a long scenario: BGPD_LAB_FULL=1 (make lab) runs it")

FIGURES: dict = {}  # (profile, scenario, flow) -> {kind: {...}}
KIND_NAMES = {"bgpd": "bgpd-bird", "bird16": "BIRD 1.6.8"}


def unreachable(lab: lab_net.Lab, timeout: float = 1.5) -> list[tuple[str, str]]:
    """(source pod, target) pairs without an answer, every pod to every other pod, both
    families."""
    pods = [p for p in lc.pods() if lab.pod_ns(p) in lab.made]
    bad = []
    for p in pods:
        targets = [a for q in pods if q is not p for a in (q.v4, q.v6)]
        got = lab.reach(lab.pod_ns(p), targets, timeout)
        bad += [(p.key, t) for t, rtt in got.items() if rtt is None]
    return bad


def loss(result: dict, t0: float) -> dict:
    """One probe target's figures: echoes sent, lost, the first and last lost one (ms
    after ``t0``, the action), the longest time without a reply (ms)."""
    lost = result["lost"]
    return {
        "sent": result["sent"],
        "lost": len(lost),
        "first_ms": round((lost[0] - t0) * 1000) if lost else None,
        "last_ms": round((lost[-1] - t0) * 1000) if lost else None,
        "gap_ms": result["longest_gap_ms"],
    }


def record(lab: lab_net.Lab, scenario: str, flow: str, fig: dict) -> None:
    FIGURES.setdefault((lab.profile, scenario, flow), {})[lab.kind] = fig


def _cell(fig: dict | None) -> str:
    if fig is None:
        return "-"
    note = f" ({fig['note']})" if fig.get("note") else ""
    if "ms" in fig:  # a convergence time
        return (f"{fig['ms']} ms" if fig["ms"] is not None else "-") + note
    if not fig["lost"]:
        return f"0 / {fig['sent']} (gap {fig['gap_ms']:.0f} ms)" + note
    return (
        f"{fig['lost']} / {fig['sent']}, lost {fig['first_ms']}..{fig['last_ms']} ms"
        f" (gap {fig['gap_ms']:.0f} ms)" + note
    )


def table() -> str:
    rows = [
        "| profile | scenario | flow | bgpd-bird | BIRD 1.6.8 |",
        "|---|---|---|---|---|",
    ]
    for (profile, scenario, flow), kinds in FIGURES.items():
        rows.append(
            f"| {profile} | {scenario} | {flow} | {_cell(kinds.get('bgpd'))}"
            f" | {_cell(kinds.get('bird16'))} |"
        )
    return "\n".join(rows)

"""Fixtures of the cluster lab (tests/lab/README.md).

``mesh_lab`` / ``rr_lab`` (module scope, one instance per daemon kind: ``bird16`` first, the
reference, then ``bgpd``, whose figures some scenarios compare with BIRD's): lab_net.Lab built for the profile, the nodes' files written as confd writes
them, BIRD 2 on the ToRs, every node's ``bird``/``bird6`` started with ``-R``; ready when
every BGP session is Established and every pod reaches every other pod over IPv4 and
IPv6. Torn down (every process by its pid, every ``lab*`` namespace it made) whatever
happens; the files and logs stay in pytest's temporary directory.

``figures``: what the scenarios measured, per kind; printed at the end of the run as one
table (and written to ``$BGPD_LAB_FIGURES`` when set).

``BGPD_LAB_FULL=1`` (``make lab``) runs every scenario; without it the quick subset runs
(:func:`full` marks the others).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from needs import skip_or_fail

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import lab_cluster as lc  # noqa: E402
import lab_net  # noqa: E402
from lab_figures import FIGURES, table, unreachable  # noqa: E402
from lab_ops import protocols  # noqa: E402

SETTLE_S = 3.0  # seconds the BGP rows of every daemon stay the same before the scenarios


def _start(request, tmp_path_factory, bird16, profile: str):
    lab_net.require_lab()
    kind = request.param
    tag = f"{os.getpid() % 1000}{profile[0]}{kind[1]}"
    lab = lab_net.Lab(tag, tmp_path_factory.mktemp(f"lab-{profile}-{kind}"), profile, kind, bird16)
    t0 = time.monotonic()
    try:
        try:
            lab.build()
        except AssertionError as e:
            skip_or_fail(f"cannot build the cluster lab: {e}")
        lab.write_configs()
        lab.start_tors()
        for node in lc.NODES:
            lab.start_node(node)
        lab_net.wait_until(lab.sessions_up, 90, f"{kind}: every BGP session Established")
        bad: list = []

        def connected() -> bool:
            nonlocal bad
            bad = unreachable(lab)
            return not bad

        lab_net.wait_until(connected, 60, f"{kind}: every pod reaches every pod: {bad}", 0.5)
        lab.ready_s = time.monotonic() - t0
        # Settled: every daemon's BGP rows (state, since) unchanged for SETTLE_S. BIRD
        # 1.6.8's ``since`` also moves when a protocol's first feed ends, which under load
        # can come seconds after the sessions are up (a reload test once saw every row of
        # two nodes move a second after a 1.2 s check had passed); the scenarios compare
        # rows before and after.
        last = {"rows": None, "at": 0.0}

        def settled() -> bool:
            rows = {(n, f): protocols(lab, n, f) for n in lc.NODES for f in (4, 6)}
            now = time.monotonic()
            if rows != last["rows"]:
                last.update(rows=rows, at=now)
                return False
            return now - last["at"] >= SETTLE_S

        lab_net.wait_until(settled, 60, f"{kind}: the BGP rows settle", 0.5)
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module", params=["bird16", "bgpd"])
def mesh_lab(request, tmp_path_factory, bird16):
    yield from _start(request, tmp_path_factory, bird16, "mesh")


@pytest.fixture(scope="module", params=["bird16", "bgpd"])
def rr_lab(request, tmp_path_factory, bird16):
    yield from _start(request, tmp_path_factory, bird16, "rr")


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    text = table()
    terminalreporter.write_sep("-", "cluster lab figures (lost / sent echoes, every 10 ms)")
    terminalreporter.write_line(text)
    out = os.environ.get("BGPD_LAB_FIGURES")
    if out:
        Path(out).write_text(text + "\n")
        Path(out).with_suffix(".json").write_text(
            json.dumps([[list(k), v] for k, v in FIGURES.items()], indent=1)
        )

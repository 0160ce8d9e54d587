"""Calico's live TCP MD5 password changes, on bgpd-bird and on BIRD 1.6.8 side by side.

confd's golden ``compiled_templates/password/step1..6`` are one node (10.24.0.1) with three
``Node_`` peers whose passwords come and go:

=====  ===============  ===============  ===============
step   10.24.0.2        10.24.0.3        10.24.10.10
=====  ===============  ===============  ===============
1      none             none             none
2      none             password-b       none
3      password-a       password-b       password-c
4      password-a       password-b       none
5      new-password-a   new-password-b   none
6      none             new-password-b   none
=====  ===============  ===============  ===============

Two identical labs (br_pw_lab.py), one with BIRD 1.6.8 as the node daemon and one with
bgpd-bird, each with three BIRD 2 peers announcing a network each, go through the steps
together. At each step the node's files are rewritten and the daemon gets SIGHUP; for a few
seconds the peers keep their old passwords (only one side changed: the sessions whose
password changed must stay down, the kernels drop the segments, no TCP connection exists);
then the peers are reconfigured and every session must be Established again with its
network. The sessions whose password did not change must not be touched at all (never
seen down, same ``since``); those whose password changed are reset (BIRD restarts a
protocol whose password changed) and come back on TCP connections that carry an MD5 key
exactly when the step has a password. Both daemons must do the same at every step.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import br_lab as lab
import br_pw_lab as pw
import pytest
from bc_helpers import wait_for

MISMATCH = 3.5  # seconds with only the node changed (past BIRD's connect delay of 2 s)
BACK = 30.0  # the longest a changed session may take to come back once both sides agree


@pytest.fixture
def pw_sides(bird16, shared_corpora):
    lab.require_lab()
    steps = [pw.read_step(shared_corpora, n) for n in pw.STEPS]
    sides: list[pw.PwSide] = []
    try:
        for kind in ("bird", "bgpd"):
            s = pw.PwSide(kind, pw.side_tag(kind), lab.make_dir(f"pw-{kind}-"))
            sides.append(s)
            s.build(steps[0])
            s.write_step(steps[0])
            s.start_peers(steps[0])
        for s in sides:
            s.start_node(bird16)
        yield steps, sides
    finally:
        for s in sides:
            s.close()
        for s in sides:
            if os.environ.get("BR_KEEP"):  # as tests/birdrun/conftest.py: keep the files
                print("kept", s.dir)
            else:
                lab.remove_dir(s.dir)


@dataclass
class StepResult:
    """What one node daemon did in one step."""

    up: set = field(default_factory=set)  # Established with its network at the end
    reset: set = field(default_factory=set)  # its since changed
    went_down: set = field(default_factory=set)  # seen not Established during the step
    mismatch_up: set = field(default_factory=set)  # Established while the peer disagreed
    mismatch_tcp: set = field(default_factory=set)  # a TCP connection while they disagreed
    md5_node: int = 0  # segments the node's kernel dropped (MD5 counters) meanwhile
    md5_peers: int = 0  # segments the peers' kernel dropped meanwhile
    md5_keys: dict = field(default_factory=dict)  # peer address -> the connection has a key
    md5_after: tuple = (0, 0)  # (node, peers) drops once both sides agree
    back: float = 0.0  # seconds from the peers' reconfiguration to all Established
    shown: dict = field(default_factory=dict)  # changed name -> its row at the window's end

    def row(self) -> str:
        def names(s: set) -> str:
            return ",".join(sorted(n.rsplit("_", 2)[-2] + "." + n.rsplit("_", 1)[-1] for n in s))

        return (
            f"up={len(self.up)} reset=[{names(self.reset)}] down=[{names(self.went_down)}] "
            f"mismatch_up=[{names(self.mismatch_up)}] tcp=[{names(self.mismatch_tcp)}] "
            f"md5 drops node={self.md5_node} peers={self.md5_peers} then {self.md5_after} "
            f"back={self.back:.1f}s"
        )


def all_up(side: pw.PwSide, names: list[str]) -> bool:
    rows = side.protocols(names)
    return all(n in rows and rows[n].established and rows[n].imported == 1 for n in names)


def drops(before: dict, after: dict) -> int:
    return sum(after[k] - before[k] for k in after)


def run_step(sides: list[pw.PwSide], prev: pw.Step, step: pw.Step) -> dict[str, StepResult]:
    names = [p.name for p in step.peers]
    changed = {p.name for p in step.peers if p.password != prev.password(p.name)}
    out = {s.kind: StepResult() for s in sides}
    before = {s.kind: s.protocols(names) for s in sides}
    counters = {s.kind: (pw.md5_counters(s.node), pw.md5_counters(s.peers_ns)) for s in sides}

    def poll(disagree: bool) -> None:
        """Note what went down, and what came up while the peers disagree."""
        for s in sides:
            rows = s.protocols(names)
            r = out[s.kind]
            for n in names:
                if not rows[n].established:
                    r.went_down.add(n)
                elif disagree and n in changed and n in r.went_down:
                    r.mismatch_up.add(n)

    for s in sides:
        s.write_step(step)
    for s in sides:
        s.hup()
    # the node applies the file: the changed sessions go down (Cease) on both daemons
    deadline = time.monotonic() + 10
    while not all(changed <= out[s.kind].went_down for s in sides):
        assert time.monotonic() < deadline, f"step {step.n}: {changed} not reset: {out}"
        poll(True)
        time.sleep(0.1)
    # only the node has the new passwords: nothing may come up, the kernels drop segments
    until = time.monotonic() + MISMATCH
    while time.monotonic() < until:
        poll(True)
        time.sleep(0.2)
    addr = {p.name: p.address for p in step.peers}
    for s in sides:
        r = out[s.kind]
        rows = s.protocols(names)
        r.shown = {n: f"{rows[n].state} {rows[n].info} ({rows[n].last_error})" for n in changed}
        tcp = {a for a, _key in pw.bgp_connections(s.node)}
        r.mismatch_tcp = {n for n in changed if addr[n] in tcp}
        node0, peers0 = counters[s.kind]
        r.md5_node = drops(node0, pw.md5_counters(s.node))
        r.md5_peers = drops(peers0, pw.md5_counters(s.peers_ns))
    # the other side follows: the peers get the same passwords
    t0 = time.monotonic()
    for s in sides:
        s.reconfigure_peers(step)
    counters = {s.kind: (pw.md5_counters(s.node), pw.md5_counters(s.peers_ns)) for s in sides}
    pending = {s.kind for s in sides}
    deadline = t0 + BACK
    while pending:
        assert time.monotonic() < deadline, f"step {step.n}: {pending} not back: {out}"
        poll(False)
        for s in sides:
            if s.kind in pending and all_up(s, names):
                pending.discard(s.kind)
                out[s.kind].back = time.monotonic() - t0
        time.sleep(0.2)
    time.sleep(0.3)
    for s in sides:
        rows = s.protocols(names)
        r = out[s.kind]
        r.up = {n for n in names if rows[n].established and rows[n].imported == 1}
        r.reset = {n for n in names if rows[n].since != before[s.kind][n].since}
        keys = {}
        for a, key in pw.bgp_connections(s.node):
            keys.setdefault(a, set()).add(key)
        r.md5_keys = keys
        node0, peers0 = counters[s.kind]
        r.md5_after = (
            drops(node0, pw.md5_counters(s.node)),
            drops(peers0, pw.md5_counters(s.peers_ns)),
        )
    return out


def test_password_steps(pw_sides):
    steps, sides = pw_sides
    names = [p.name for p in steps[0].peers]
    assert [p.address for p in steps[0].peers] == ["10.24.0.2", "10.24.0.3", "10.24.10.10"]
    assert steps[0].router_id == steps[0].source == "10.24.0.1"
    t_start = time.monotonic()
    for s in sides:
        wait_for(lambda s=s: all_up(s, names), 40, f"{s.kind}: step 1, every session up")
    print(f"\nstep 1: all up after {time.monotonic() - t_start:.1f}s")
    table = {}
    for prev, step in zip(steps, steps[1:], strict=False):
        changed = {p.name for p in step.peers if p.password != prev.password(p.name)}
        assert changed, f"step {step.n} changes no password"
        res = run_step(sides, prev, step)
        table[step.n] = res
        for kind, r in res.items():
            print(f"step {step.n} {kind:4}: {r.row()}")
            print(f"    while they disagree: {r.shown}")
        for kind, r in res.items():
            what = f"step {step.n}, {kind}"
            assert r.up == set(names), f"{what}: not every session back"
            assert r.mismatch_up == set(), f"{what}: up with only one side changed"
            assert r.mismatch_tcp == set(), f"{what}: TCP connection with only one side changed"
            assert r.md5_node > 0 and r.md5_peers > 0, f"{what}: no MD5 segment dropped"
            assert r.reset == changed, f"{what}: reset {r.reset}, changed {changed}"
            assert r.went_down == changed, f"{what}: down {r.went_down}, changed {changed}"
            for p in step.peers:
                want = {p.password is not None}
                assert r.md5_keys.get(p.address) == want, f"{what}: {p.address} MD5 key"
        # the differential: bgpd-bird does what BIRD 1.6.8 does
        bird, bgpd = res["bird"], res["bgpd"]
        for attr in ("up", "reset", "went_down", "mismatch_up", "mismatch_tcp", "md5_keys"):
            assert getattr(bgpd, attr) == getattr(bird, attr), f"step {step.n}: {attr}"
    for s in sides:
        assert s.proc is not None and s.proc.poll() is None, f"{s.kind} exited"
    print(f"all steps: {time.monotonic() - t_start:.1f}s")

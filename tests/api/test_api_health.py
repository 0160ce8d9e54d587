"""The liveness and readiness rules (bgpd/api/health.py) over time, on plain snapshots."""

import pytest

from bgpd.api.health import STARTUP_GRACE, check, liveness, readiness

T0 = 1000.0  # the clock's value at start


def snap(*states, started=T0, **extra):
    neighbors = []
    for i, s in enumerate(states, start=1):
        n = {"address": f"192.0.2.{i}", "state": s, "enabled": True}
        if isinstance(s, tuple):  # (state, {overrides})
            n.update(state=s[0], **s[1])
        neighbors.append(n)
    return {"started": started, "stopping": False, "neighbors": neighbors, **extra}


def ready_at(s, seconds_after_start):
    return readiness(s, T0 + seconds_after_start)


# --- the first 30 seconds: every neighbor Established -------------------------------------


@pytest.mark.parametrize("t", [0.0, 1.0, STARTUP_GRACE - 0.001])
def test_during_grace_every_neighbor_must_be_established(t):
    assert ready_at(snap("Established", "Established"), t).ok
    v = ready_at(snap("Established", "Active"), t)
    assert not v.ok
    assert "192.0.2.2" in v.reason and "192.0.2.1" not in v.reason
    assert "1 of 2 up" in v.reason


def test_during_grace_names_at_most_five_neighbors():
    v = ready_at(snap(*["Connect"] * 8), 5)
    assert "192.0.2.5 and 3 more" in v.reason
    assert "192.0.2.6" not in v.reason


# --- afterwards: at least one Established ----------------------------------------------------


@pytest.mark.parametrize("t", [STARTUP_GRACE, STARTUP_GRACE + 1, 86400.0])
def test_after_grace_one_established_is_enough(t):
    v = ready_at(snap("Established", "Active", "Idle"), t)
    assert v.ok, v.reason
    assert v.reason == "ready: 1 of 3 neighbors Established"


def test_after_grace_none_established_is_not_ready():
    v = ready_at(snap("Active", "OpenSent"), STARTUP_GRACE + 5)
    assert not v.ok
    assert v.reason == "not ready: no neighbor Established (192.0.2.1, 192.0.2.2 down)"


def test_the_same_speaker_over_time():
    """One neighbor of two stays down: not ready for 30 s, then ready."""
    s = snap("Established", "Active")
    timeline = [(t, ready_at(s, t).ok) for t in (0, 10, 29.9, 30, 31, 300)]
    assert timeline == [(0, False), (10, False), (29.9, False), (30, True), (31, True), (300, True)]


def test_grace_is_a_parameter():
    s = snap("Established", "Active")
    assert readiness(s, T0 + 10, grace=5).ok
    assert not readiness(s, T0 + 10, grace=60).ok


# --- no neighbors, admin-down and dynamic neighbors ----------------------------------------


@pytest.mark.parametrize("t", [0, 100])
def test_no_neighbors_is_ready(t):
    v = ready_at(snap(), t)
    assert v.ok and v.reason == "ready: no neighbors to wait for"


def test_admin_down_and_dynamic_neighbors_are_not_counted():
    s = snap(
        "Established",
        ("Idle", {"enabled": False}),  # shutdown: true / bgpd neighbor shutdown
        ("Connect", {"dynamic": True}),  # accepted from a range: comes and goes
    )
    assert ready_at(s, 0).ok
    only_down = snap(("Idle", {"enabled": False}), ("Active", {"dynamic": True}))
    assert ready_at(only_down, 0).ok
    assert ready_at(only_down, 100).ok


# --- graceful restart and stopping ---------------------------------------------------------------


@pytest.mark.parametrize("t", [0, 100])
def test_graceful_restart_in_progress_is_not_ready(t):
    s = snap("Established", gr_in_progress=True)
    v = ready_at(s, t)
    assert not v.ok and v.reason == "not ready: graceful restart in progress"


def test_missing_gr_key_means_no_graceful_restart():
    s = snap("Established")
    assert "gr_in_progress" not in s
    assert ready_at(s, 0).ok


def test_liveness():
    assert liveness(snap()).ok
    assert liveness({"started": T0}).ok
    v = liveness(snap(stopping=True))
    assert not v.ok and v.reason == "not live: bgpd is stopping"


def test_stopping_is_neither_live_nor_ready():
    h = check(snap("Established", stopping=True), T0 + 100)
    assert (h.live, h.ready) == (False, False)
    assert h.reason == "not live: bgpd is stopping"


def test_check_combines_both():
    h = check(snap("Active"), T0 + 1)
    assert h.as_dict() == {
        "live": True,
        "ready": False,
        "reason": h.ready_reason,
        "live_reason": "live",
        "ready_reason": h.ready_reason,
    }
    assert h.ready_reason.startswith("not ready: 192.0.2.1 not Established yet")

"""The metrics collector (bgpd/api/metrics.py) against hand-written speaker snapshots."""

import re

import pytest
from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from bgpd import __version__
from bgpd.api.metrics import METRICS, Collector, make_registry

T0 = 500.0


def fake_snapshot(**over):
    snap = {
        "router_id": "192.0.2.10",
        "asn": 64512,
        "started": T0,
        "stopping": False,
        "neighbors": [
            {
                "address": "192.0.2.1",
                "asn": 65001,
                "state": "Established",
                "enabled": True,
                "flaps": 2,
                "updates": {"in": 40, "out": 7},
                "messages": {
                    "in": {"open": 3, "update": 40, "notification": 1, "keepalive": 90},
                    "out": {"open": 3, "update": 7, "keepalive": 88, "route_refresh": 1},
                },
                "prefixes": {"received": 120, "accepted": 100, "advertised": 3},
            },
            {
                "address": "2001:db8::2",
                "asn": 64512,
                "state": "OpenConfirm",
                "enabled": True,
                "flaps": 0,
                "updates": {"in": 0, "out": 0},
                "messages": {"in": {}, "out": {}},
                "prefixes": {"received": 0, "accepted": 0, "advertised": 0},
            },
            {
                "address": "192.0.2.3",
                "asn": 65003,
                "state": "Idle",
                "enabled": False,
                "flaps": 0,
                "updates": {"in": 0, "out": 0},
                "messages": {"in": {}, "out": {}},
            },  # no "prefixes": a snapshot taken without them
        ],
        "rib": {"ipv4": 103, "ipv6": 7},
        "fib": {"routes": 99, "sync_errors": 4},
        "reloads": {"ok": 3, "error": 1, "last_timestamp": 1.7e9, "last_result": "error"},
        "dynamic_refused": 5,
        "bfd": {
            "sessions": [
                {
                    "neighbor": "192.0.2.1",
                    "peer": "192.0.2.1",
                    "local": "192.0.2.254",
                    "state": "Up",
                    "flaps": 2,
                    "detection_time_ms": 900.0,
                },
                {
                    "neighbor": None,
                    "peer": "192.0.2.9",
                    "local": "192.0.2.254",
                    "state": "Init",
                    "flaps": 0,
                    "detection_time_ms": 3000.0,
                },
            ],
            "drops": {"malformed": 1, "wrong_ttl": 3},
            "bgp_down_events": 2,
        },
        "monitoring": {
            "mrt": {"records": 25, "bytes": 2500, "dropped_records": 2, "errors": 1},
            "bmp": {
                "stations": [
                    {
                        "station": "192.0.2.50:1790",
                        "state": "up",
                        "connects": 2,
                        "drops": 1,
                        "sent_bytes": 4096,
                        "buffered": 100,
                    },
                    {"station": "[2001:db8::50]:1790", "state": "idle", "connects": 0},
                ]
            },
        },
    }
    snap.update(over)
    return snap


def test_bfd_metrics():
    got = samples(fake_snapshot())
    up = (("local", "192.0.2.254"), ("neighbor", "192.0.2.1"))
    init = (("local", "192.0.2.254"), ("neighbor", "192.0.2.9"))
    assert got[("bgpd_bfd_session_state", up)] == 3
    assert got[("bgpd_bfd_session_state", init)] == 2
    assert got[("bgpd_bfd_session_flaps_total", up)] == 2
    assert got[("bgpd_bfd_detection_time_seconds", up)] == 0.9
    assert got[("bgpd_bfd_packets_dropped_total", (("reason", "wrong_ttl"),))] == 3
    assert got[("bgpd_bfd_bgp_down_total", ())] == 2
    assert not any(n.startswith("bgpd_bfd") for n, _ in samples(fake_snapshot(bfd=None)))


def samples(snapshot, now=T0 + 100.0, process=False) -> dict:
    """{(sample name, ((label, value), ...)): value} from the text exposition, parsed back."""
    registry = make_registry(lambda: snapshot, clock=lambda: now, process=process)
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def nb(address, asn, **labels):
    return tuple(sorted({"neighbor": address, "asn": str(asn), **labels}.items()))


def test_every_metric_is_declared_once_with_the_conventions():
    names = [d.name for d in METRICS]
    assert len(names) == len(set(names))
    for d in METRICS:
        assert re.fullmatch(r"bgpd_[a-z0-9_]+", d.name), d.name
        assert d.kind in ("gauge", "counter")
        assert d.name.endswith("_total") == (d.kind == "counter"), d.name
        assert d.help.endswith(".") and "\n" not in d.help, d.name
    wanted = {
        "bgpd_neighbor_state",
        "bgpd_neighbor_up",
        "bgpd_neighbor_flaps_total",
        "bgpd_neighbor_prefixes",
        "bgpd_neighbor_updates_total",
        "bgpd_neighbor_messages_total",
        "bgpd_rib_routes",
        "bgpd_fib_routes",
        "bgpd_fib_sync_errors_total",
        "bgpd_reloads_total",
        "bgpd_last_reload_timestamp_seconds",
        "bgpd_ready",
    }
    assert wanted <= set(names)


def test_collect_yields_exactly_the_declared_families_with_their_help():
    fams = list(Collector(fake_snapshot, clock=lambda: T0).collect())
    declared = {d.name.removesuffix("_total"): d for d in METRICS}
    assert [f.name for f in fams] == list(declared)
    for f in fams:
        d = declared[f.name]
        assert f.type == d.kind and f.documentation == d.help
        for s in f.samples:
            assert set(s.labels) == set(d.labels), (f.name, s.labels)


def test_neighbor_metrics():
    got = samples(fake_snapshot())
    a = ("192.0.2.1", 65001)
    b = ("2001:db8::2", 64512)
    c = ("192.0.2.3", 65003)
    assert got[("bgpd_neighbor_state", nb(*a))] == 6
    assert got[("bgpd_neighbor_state", nb(*b))] == 5
    assert got[("bgpd_neighbor_state", nb(*c))] == 1
    assert got[("bgpd_neighbor_up", nb(*a))] == 1
    assert got[("bgpd_neighbor_up", nb(*b))] == 0
    assert got[("bgpd_neighbor_admin_down", nb(*a))] == 0
    assert got[("bgpd_neighbor_admin_down", nb(*c))] == 1
    assert got[("bgpd_neighbor_flaps_total", nb(*a))] == 2
    for direction, value in (("received", 120), ("accepted", 100), ("advertised", 3)):
        assert got[("bgpd_neighbor_prefixes", nb(*a, direction=direction))] == value
    assert ("bgpd_neighbor_prefixes", nb(*c, direction="received")) not in got
    assert got[("bgpd_neighbor_updates_total", nb(*a, direction="in"))] == 40
    assert got[("bgpd_neighbor_updates_total", nb(*a, direction="out"))] == 7
    msgs = {
        (d, t): got[("bgpd_neighbor_messages_total", nb(*a, direction=d, type=t))]
        for d in ("in", "out")
        for t in ("open", "update", "notification", "keepalive", "route_refresh")
    }
    assert msgs == {
        ("in", "open"): 3,
        ("in", "update"): 40,
        ("in", "notification"): 1,
        ("in", "keepalive"): 90,
        ("in", "route_refresh"): 0,
        ("out", "open"): 3,
        ("out", "update"): 7,
        ("out", "notification"): 0,
        ("out", "keepalive"): 88,
        ("out", "route_refresh"): 1,
    }
    assert got[("bgpd_neighbor_messages_total", nb(*b, direction="in", type="open"))] == 0


def test_global_metrics():
    got = samples(fake_snapshot())
    info = (("asn", "64512"), ("router_id", "192.0.2.10"), ("version", __version__))
    assert got[("bgpd_info", info)] == 1
    assert got[("bgpd_rib_routes", (("family", "ipv4"),))] == 103
    assert got[("bgpd_rib_routes", (("family", "ipv6"),))] == 7
    assert got[("bgpd_fib_routes", ())] == 99
    assert got[("bgpd_fib_sync_errors_total", ())] == 4
    assert got[("bgpd_reloads_total", (("result", "ok"),))] == 3
    assert got[("bgpd_reloads_total", (("result", "error"),))] == 1
    assert got[("bgpd_last_reload_timestamp_seconds", ())] == 1.7e9
    assert got[("bgpd_last_reload_success", ())] == 0
    assert got[("bgpd_dynamic_neighbors_refused_total", ())] == 5


def test_no_fib_and_no_reload_yet():
    snap = fake_snapshot(
        fib=None, reloads={"ok": 0, "error": 0, "last_timestamp": None, "last_result": None}
    )
    got = samples(snap)
    names = {name for name, _ in got}
    assert "bgpd_fib_routes" not in names and "bgpd_fib_sync_errors_total" not in names
    text = generate_latest(make_registry(lambda: snap, process=False)).decode()
    assert "fib" not in text and "last_reload" not in text  # not even HELP and TYPE
    assert "bgpd_last_reload_timestamp_seconds" not in names
    assert "bgpd_last_reload_success" not in names
    assert got[("bgpd_reloads_total", (("result", "ok"),))] == 0


def test_minimal_snapshot():
    """Only ``started``: a speaker with nothing yet still gives a valid exposition."""
    got = samples({"started": T0})
    assert got[("bgpd_ready", ())] == 1  # no neighbors
    assert got[("bgpd_reloads_total", (("result", "error"),))] == 0


@pytest.mark.parametrize(
    "now, ready",
    [(T0 + 1, 0), (T0 + 31, 1)],  # one neighbor of two up: not ready before 30 s, then ready
)
def test_ready_follows_the_readiness_rule(now, ready):
    assert samples(fake_snapshot(), now=now)[("bgpd_ready", ())] == ready


def test_ready_is_0_during_graceful_restart():
    got = samples(fake_snapshot(gr_in_progress=True), now=T0 + 1000)
    assert got[("bgpd_ready", ())] == 0


def test_snapshot_is_read_once_per_scrape():
    calls = []

    def snapshot():
        calls.append(1)
        return fake_snapshot()

    registry = make_registry(snapshot, process=False)
    assert calls == []  # registering does not collect
    generate_latest(registry)
    assert len(calls) == 1


def test_process_metrics_are_included():
    names = {name for name, _ in samples(fake_snapshot(), process=True)}
    assert {"process_cpu_seconds_total", "python_info"} <= names
    assert "process_resident_memory_bytes" in names  # Linux


def test_openmetrics_exposition():
    registry = make_registry(fake_snapshot, process=False)
    text = generate_openmetrics(registry).decode()
    assert text.endswith("# EOF\n")
    assert "# TYPE bgpd_neighbor_flaps counter" in text
    assert 'bgpd_neighbor_flaps_total{asn="65001",neighbor="192.0.2.1"} 2.0' in text


def test_monitoring_metrics():
    got = samples(fake_snapshot())
    assert got[("bgpd_mrt_records_total", ())] == 25
    assert got[("bgpd_mrt_bytes_total", ())] == 2500
    assert got[("bgpd_mrt_dropped_records_total", ())] == 2
    assert got[("bgpd_mrt_write_errors_total", ())] == 1
    st = (("station", "192.0.2.50:1790"),)
    assert got[("bgpd_bmp_station_up", st)] == 1
    assert got[("bgpd_bmp_station_connects_total", st)] == 2
    assert got[("bgpd_bmp_station_drops_total", st)] == 1
    assert got[("bgpd_bmp_station_sent_bytes_total", st)] == 4096
    assert got[("bgpd_bmp_station_queued_bytes", st)] == 100
    assert got[("bgpd_bmp_station_up", (("station", "[2001:db8::50]:1790"),))] == 0
    # monitoring off: no MRT or BMP samples at all
    off = samples(fake_snapshot(monitoring={"mrt": None, "bmp": None}))
    assert not [k for k in off if k[0].startswith(("bgpd_mrt_", "bgpd_bmp_"))]

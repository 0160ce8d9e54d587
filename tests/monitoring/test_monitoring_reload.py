"""``mrt`` and ``bmp`` applied by ``bgpd reload`` to a running bgpd (no restart needed).

bgpd starts without monitoring and has a session with BIRD 2. A reload that adds an update
log and a pmbmpd station makes the Established session monitored from then on (its later
messages are logged; the station gets its Peer Up and a resync equal to bgpd's tables); a new
log pattern starts a new file and closes the old one; a bad section changes nothing and names
the key; removing the station sends it a BMP Termination.
"""

from __future__ import annotations

import json
from pathlib import Path

from mon_helpers import show_json, wait_for
from test_bmp_daemon import BGPD_AS, BIRD_AS, wait_same_tables
from test_mrt_daemon import log_counts


def reload(d) -> dict:
    d.config_path.write_text(d.config_text())
    res = d.cli("reload", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_reload_switches_monitoring_on_changes_and_off(bird, bgpd, pmbmpd, addresses, tmp_path):
    a_bgpd, a_bird = addresses(), addresses()
    b = bird(
        asn=BIRD_AS,
        address=a_bird,
        neighbors=[{"address": a_bgpd, "asn": BGPD_AS}],
        routes=[{"prefix": "10.81.0.0/24", "next_hop": "192.0.2.81", "med": 1}],
    )
    d = bgpd(asn=BGPD_AS, address=a_bgpd, neighbors=[{"address": a_bird, "asn": BIRD_AS}])
    d.wait_state(a_bird, timeout=60)
    d.wait_route("10.81.0.0/24", timeout=30)
    assert show_json(d, "show", "monitoring") == {
        "mrt": None,
        "bmp": None,
        "dumps": {"count": 0, "running": None, "last": None},
    }

    # on: an update log and a station, for the session that is already up
    first = str(tmp_path / "a" / "u.%Y%m%d.%H%M%S.mrt")
    station = {
        "address": pmbmpd.address,
        "port": pmbmpd.port,
        "local_address": a_bgpd,
        "retry": "500ms",
    }
    d.extra.update(mrt={"updates": first, "rotate": 0, "flush_interval": "100ms"}, bmp=[station])
    r = reload(d)
    assert r["ok"] and r["restart_needed"] == [], r
    b.announce("10.81.1.0/24", "192.0.2.81", med=2)
    d.wait_route("10.81.1.0/24", timeout=30)

    tables, ups, _downs, _stats = wait_same_tables(d, pmbmpd)[1]
    assert {u["peer_ip"] for u in ups if u.get("peer_type") != 3} == {a_bird}
    assert (1, "10.81.1.0/24") in tables[a_bird]
    mon = wait_for(
        lambda: (
            (m := show_json(d, "show", "monitoring"))["mrt"]["records"] > 0
            and m["mrt"]["pending"] == 0
            and m
        ),
        10,
        "the update log",
    )
    (file_a,) = mon["mrt"]["files"]
    assert Path(file_a).parent == tmp_path / "a"
    counts = log_counts(file_a)
    assert counts[(a_bird, "in", "update")] >= 1  # the new route, read after the reload

    # a bad section: nothing changes, the error names the key
    d.extra["bmp"] = [{**station, "port": 0}]
    d.config_path.write_text(d.config_text())
    res = d.cli("reload")
    assert res.returncode == 1 and "bmp[0].port: 0 is out of range" in res.stderr
    assert show_json(d, "show", "monitoring")["bmp"]["stations"][0]["state"] == "up"

    # a new pattern: a new file; the station, unchanged, keeps its connection
    second = str(tmp_path / "b" / "u.%Y%m%d.%H%M%S.mrt")
    d.extra.update(mrt={"updates": second, "rotate": 0, "flush_interval": "100ms"}, bmp=[station])
    r = reload(d)
    assert r["ok"] and r["restart_needed"] == [], r
    before = log_counts(file_a)
    b.announce("10.81.2.0/24", "192.0.2.81", med=3)
    d.wait_route("10.81.2.0/24", timeout=30)
    mon = wait_for(
        lambda: (
            (m := show_json(d, "show", "monitoring"))["mrt"]["files"]
            and m["mrt"]["pending"] == 0
            and m
        ),
        10,
        "the second file",
    )
    (file_b,) = mon["mrt"]["files"]
    assert Path(file_b).parent == tmp_path / "b"
    wait_for(lambda: log_counts(file_b)[(a_bird, "in", "update")] >= 1, 10, "the new UPDATE")
    assert log_counts(file_a) == before  # closed: nothing more went to it
    assert mon["bmp"]["stations"][0]["connects"] == 1

    # off: the station gets a Termination, the log is closed
    del d.extra["bmp"]
    del d.extra["mrt"]
    r = reload(d)
    assert r["ok"], r
    wait_for(
        lambda: any(x.get("bmp_msg_type") == "term" for x in pmbmpd.records()),
        10,
        "a BMP Termination",
    )
    assert show_json(d, "show", "monitoring")["mrt"] is None
    b.announce("10.81.3.0/24", "192.0.2.81")
    d.wait_route("10.81.3.0/24", timeout=30)
    assert show_json(d, "show", "monitoring")["bmp"] is None
    assert d.state(a_bird) == "Established"

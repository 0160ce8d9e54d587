"""SIGHUP (``sv hup bird``): bgpd-bird re-reads its file and applies the difference.

BIRD 1.6.8 and bgpd-bird run the same file with two mesh peers (BIRD 2, one per address of
namespace B). The file is rewritten (one peer removed, one added, the kept peer's export
filter changed) and both get SIGHUP: the kept session is not reset (same uptime on both of
its ends, no flap, the new filter's route arrives by itself), the removed one goes, the new
one comes up, and ``show protocols`` of both daemons lists the same protocols in the same
order and states. A broken file then changes nothing (the error is logged as
``file:line:col message``), on both daemons.
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime

import br_lab as lab
import pytest
from bc_helpers import query, wait_for
from br_compare import comparable

from bgpd.api.client import request


def peer_conf(x: int) -> str:
    """BIRD 2 as the peer at 192.0.2.X: one process per address (BIRD 2 runs one session
    per neighbor address, and every peer's neighbor is 192.0.2.1)."""
    return f"""\
router id 192.0.2.{x};
protocol device {{}}
protocol bgp p{x} {{
  local 192.0.2.{x} as 64512;
  strict bind on;
  neighbor 192.0.2.1 as 64512;
  graceful restart on;
  ipv4 {{ import all; export none; }};
}}
"""


def config(peers: list[int], wide: bool) -> str:
    """The daemon's file: a static protocol and one mesh protocol per peer; ``wide``: the
    first peer's export filter takes 10.66.0.0/16 as well."""
    text = """\
router id 192.0.2.1;
protocol device { }
protocol static {
  route 10.65.0.0/26 blackhole;
  route 10.66.0.0/26 blackhole;
}
template bgp mesh {
  local as 64512;
  source address 192.0.2.1;
  connect delay time 1;
  connect retry time 2;
  error wait time 1,5;
  graceful restart;
  import all;
}
"""
    for i, x in enumerate(peers):
        nets = "[ 10.65.0.0/16+, 10.66.0.0/16+ ]" if wide and i == 0 else "[ 10.65.0.0/16+ ]"
        text += f"""
protocol bgp Mesh_192_0_2_{x} from mesh {{
  neighbor 192.0.2.{x} as 64512;
  export filter {{ if net ~ {nets} then accept; reject; }};
}}
"""
    return text


BROKEN = config([2, 4], True).replace("local as 64512;", "local as 64512")


def rows(side) -> list[str]:
    return comparable(query(side.sock, "show protocols")[1])


def established(side, name: str) -> bool:
    return any(name in r and "Established" in r for r in rows(side))


def birdc2(side, x: int, *cmd: str) -> str:
    sock = str(side.dir / f"peer{x}.ctl")
    return lab.ip("netns", "exec", side.b, "birdc", "-s", sock, *cmd, check=False).stdout


def peer_routes(side, x: int) -> str:
    return birdc2(side, x, "show", "route", "protocol", f"p{x}")


def peer_since(side, x: int) -> list[str]:
    """The state and since columns of the peer's protocol (a reset changes them)."""
    return birdc2(side, x, "show", "protocols", f"p{x}").splitlines()[-1].split()[3:5]


def reconfigured(status: list[str]) -> datetime:
    (line,) = [ln for ln in status if "Last reconfiguration on " in ln]
    return datetime.strptime(line.split(" on ", 1)[1], "%Y-%m-%d %H:%M:%S")


def hup(side, proc=None) -> None:
    if proc is not None:
        proc.send_signal(signal.SIGHUP)
    else:
        os.kill(int((side.dir / "bird.pid").read_text()), signal.SIGHUP)


@pytest.fixture
def pair(bird16):
    lab.require_lab()
    tag = f"{os.getpid() % 1000}"
    sides = []
    try:
        for who in ("p", "q"):
            s = lab.Side(
                f"{who}{tag}",
                lab.make_dir(f"br-{who}-"),
                bird_cfg=config([2, 3], False),
                b_addrs=("192.0.2.3", "192.0.2.4"),
            )
            sides.append(s)
            s.build()
            for x in (2, 3, 4):
                s.start_peer(f"peer{x}", peer_conf(x))
        (sides[1].dir / "bgpd.yaml").write_text(
            json.dumps({"bird": {"control_socket": str(sides[1].dir / "bgpd.sock")}})
        )
        sides[0].start_bird16(bird16, restart=False)
        proc = sides[1].start_bgpd(restart=False)
        yield sides[0], sides[1], proc
    finally:
        for s in sides:
            s.close()
            lab.remove_dir(s.dir)


def test_sighup_touches_only_what_changed(pair):
    bird, bgpd, proc = pair
    for s in (bird, bgpd):
        for x in (2, 3):
            wait_for(lambda s=s, x=x: established(s, f"Mesh_192_0_2_{x}"), 30, f"{s.tag} peer {x}")
        wait_for(lambda s=s: "10.65.0.0/26" in peer_routes(s, 2), 10, "routes at the peer")
    assert "10.66.0.0/26" not in peer_routes(bgpd, 2)
    before = {
        n["address"]: n for n in request(str(bgpd.dir / "bgpd.sock"), "show_neighbors")["neighbors"]
    }
    kept_since = {s.tag: (rows(s), peer_since(s, 2)) for s in (bird, bgpd)}
    time.sleep(1.5)  # a reset now would show in the since columns

    for s in (bird, bgpd):
        s.cfg.write_text(config([2, 4], True))
    hup(bird)
    hup(bgpd, proc)
    for s in (bird, bgpd):
        wait_for(lambda s=s: established(s, "Mesh_192_0_2_4"), 30, f"{s.tag}: the new peer up")
        wait_for(lambda s=s: "10.66.0.0/26" in peer_routes(s, 2), 10, "the new filter's route")
        wait_for(lambda s=s: not any("Mesh_192_0_2_3" in r for r in rows(s)), 10, "peer 3 gone")
    time.sleep(0.5)
    # the kept session: not reset on either end
    after = {
        n["address"]: n for n in request(str(bgpd.dir / "bgpd.sock"), "show_neighbors")["neighbors"]
    }
    assert after["192.0.2.2"]["uptime"] > before["192.0.2.2"]["uptime"] + 1.0
    assert (
        after["192.0.2.2"]["messages"]["in"]["open"]
        == before["192.0.2.2"]["messages"]["in"]["open"]
    )
    assert set(after) == {"192.0.2.2", "192.0.2.4"}
    for s in (bird, bgpd):
        mine_then, peer_then = kept_since[s.tag]
        kept_row = next(r for r in rows(s) if "Mesh_192_0_2_2" in r)
        assert kept_row == next(r for r in mine_then if "Mesh_192_0_2_2" in r)
        assert peer_since(s, 2) == peer_then, f"{s.tag}: the peer saw the session reset"
    # both daemons list the same protocols, in the same order, in the same states
    assert rows(bgpd) == rows(bird)
    assert comparable(query(bgpd.sock, "show route")[1]) == comparable(
        query(bird.sock, "show route")[1]
    )

    # a broken file: nothing changes, the error is logged as BIRD words it
    status = {s.tag: query(s.sock, "show status")[1] for s in (bird, bgpd)}
    for s in (bird, bgpd):
        s.cfg.write_text(BROKEN)
    time.sleep(2.5)  # a reconfiguration now would show in "Last reconfiguration"
    hup(bird)
    hup(bgpd, proc)
    time.sleep(1.5)
    assert proc.poll() is None
    assert rows(bgpd) == rows(bird)
    for s in (bird, bgpd):
        last = reconfigured(query(s.sock, "show status")[1])
        # BIRD converts its monotonic clock to wall time for each reply: a second of jitter
        assert abs((last - reconfigured(status[s.tag])).total_seconds()) <= 1.0, s.tag
    assert reconfigured(query(bgpd.sock, "show status")[1]) == reconfigured(status[bgpd.tag])
    errors = [json.loads(ln) for ln in bgpd.log.read_text().splitlines() if ln.startswith("{")]
    words = [e["event"] for e in errors if e.get("level") == "error"]
    assert "bird.cfg:9:3 syntax error" in words, words
    r = query(bgpd.sock, "configure")[1]
    assert r == ["0002-Reading configuration from bird.cfg", "8002 bird.cfg:9:3 syntax error"]
    assert r == query(bird.sock, "configure")[1]

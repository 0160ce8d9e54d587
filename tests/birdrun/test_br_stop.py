"""How bgpd-bird ends its sessions, beside the daemons it stands in for.

Three sides (br_lab.Side: namespaces A, B, C each), the same two BGP protocols in A:
``Mesh_192_0_2_2`` to BIRD 2 in B (graceful restart on, the default restart time 120) and
``Global_192_0_2_7`` to a recording neighbor in C (br_listener.py; ``graceful restart time
10``, as a BGPPeer's maxRestartTime), run by

* BIRD 1.6.8 (Calico's oracle),
* bgpd-bird,
* BIRD 2.0.12 (the ``graceful restart`` command's origin), on the same file in BIRD 2's
  syntax.

Measured by hand first, then here (docs/birdrun.md): BIRD 1.6.8 on SIGTERM (and
``down``) sends Cease/Administrative Shutdown (6/2) without data to every neighbor, which
drops its routes at once; its server answers ``graceful restart`` with ``9001 syntax
error`` (its clients refuse it). BIRD 2.0.12 answers ``graceful restart`` with ``0025
Graceful restart requested``, closes the connection, ends the sessions of its graceful
restart protocols without a NOTIFICATION and exits 0. bgpd-bird must do each of these as
the daemon that defines it; its restart marker (``bird.ctl.restart``) is left only by the
graceful stop.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import br_lab as lab
import pytest
from bc_helpers import query, wait_for
from needs import skip_or_fail

HERE = Path(__file__).resolve().parent
MESH = "Mesh_192_0_2_2"
GLOBAL = "Global_192_0_2_7"
LISTENER = "192.0.2.7"  # in C
NET = "10.65.0.0/26"  # A's static blackhole, exported to both neighbors

CFG16 = f"""\
router id 192.0.2.1;
graceful restart wait 10;
protocol device {{ scan time 2; }}
protocol static {{ route {NET} blackhole; }}
template bgp bgp_template {{
  local as 64512;
  graceful restart;
  connect delay time 1;
  connect retry time 2;
  error wait time 1,5;
  import all;
  export all;
}}
protocol bgp {MESH} from bgp_template {{
  neighbor 192.0.2.2 as 64512;
  source address 192.0.2.1;
}}
protocol bgp {GLOBAL} from bgp_template {{
  neighbor {LISTENER} as 64512;
  source address 192.0.2.1;
  graceful restart time 10;
}}
"""

CFG2 = f"""\
router id 192.0.2.1;
graceful restart wait 10;
protocol device {{ scan time 2; }}
protocol static {{ ipv4; route {NET} blackhole; }}
template bgp bgp_template {{
  local as 64512;
  graceful restart on;
  connect delay time 1;
  connect retry time 2;
  error wait time 1,5;
  ipv4 {{ import all; export all; }};
}}
protocol bgp {MESH} from bgp_template {{
  neighbor 192.0.2.2 as 64512;
  source address 192.0.2.1;
}}
protocol bgp {GLOBAL} from bgp_template {{
  neighbor {LISTENER} as 64512;
  source address 192.0.2.1;
  graceful restart time 10;
}}
"""

PEER = """\
router id 192.0.2.2;
protocol device {}
protocol direct { ipv4; interface "brb0"; }
protocol bgp up {
  local 192.0.2.2 as 64512;
  neighbor 192.0.2.1 as 64512;
  graceful restart on;
  ipv4 { import all; export none; };
}
"""


class Stopper:
    """One side: its daemon in A (``kind``: bird16, bgpd or bird2, in the foreground so
    that its exit status is seen), BIRD 2 in B, the recording neighbor in C."""

    def __init__(self, side: lab.Side, kind: str, bird16: Path) -> None:
        self.side = side
        self.kind = kind
        self.bird16 = bird16
        self.proc: subprocess.Popen | None = None
        self.listener: subprocess.Popen | None = None
        self.events = side.dir / "listener.jsonl"

    @property
    def marker(self) -> Path:
        return self.side.dir / "bird.ctl.restart"

    def start_listener(self) -> None:
        argv = ["ip", "netns", "exec", self.side.c, sys.executable, str(HERE / "br_listener.py")]
        self.listener = subprocess.Popen(
            [*argv, LISTENER, "64512", str(self.events)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.side.dir / "listener.err", "w"),  # noqa: SIM115
        )
        wait_for(lambda: self.events.exists(), 10, "the listener")

    def start(self, restart: bool = True) -> None:
        exe = {"bgpd": lab.BGPD_BIRD, "bird16": str(self.bird16 / "bird"), "bird2": lab.BIRD2}
        fg = "-d" if self.kind == "bgpd" else "-f"
        argv = ["ip", "netns", "exec", self.side.a, exe[self.kind], fg]
        argv += ["-R"] if restart else []
        argv += ["-c", "bird.cfg", "-s", "bird.ctl"]
        with open(self.side.log, "a") as f:
            self.proc = subprocess.Popen(
                argv, stdout=f, stderr=subprocess.STDOUT, cwd=self.side.dir
            )
        self.side.procs.append(self.proc)

    def wait_up(self) -> None:
        def up() -> bool:
            try:
                rows = query(self.side.sock, "show protocols")[1]
            except OSError:
                return False
            est = [r for r in rows if "Established" in r and (MESH in r or GLOBAL in r)]
            return len(est) == 2 and self.peer_has_route()

        wait_for(up, 30, f"{self.kind}: both sessions Established, the route at BIRD 2")

    def stop(self, sig: int) -> int | None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.wait_exit()

    def wait_exit(self) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            return None

    def birdc(self, *cmd: str) -> str:
        r = subprocess.run(
            ["/usr/sbin/birdc", "-s", str(self.side.sock2), *cmd],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return r.stdout

    def peer_has_route(self) -> bool:
        return f"{NET} " in self.birdc("show", "route", NET)

    def peer_protocol(self) -> str:
        return self.birdc("show", "protocols", "all", "up")

    def listened(self) -> list[dict]:
        return [json.loads(x) for x in self.events.read_text().splitlines() if x.strip()]

    def last_conn(self) -> list[dict]:
        ev = self.listened()
        n = max(e["conn"] for e in ev)
        return [e for e in ev if e["conn"] == n]


@pytest.fixture(scope="module")
def sides(bird16):
    lab.require_lab()
    if not os.access(lab.BIRD2, os.X_OK):
        skip_or_fail("BIRD 2 not found: apt-get install bird2")
    tag = f"{os.getpid() % 1000}"
    made: dict[str, Stopper] = {}
    try:
        for kind, letter in (("bird16", "p"), ("bgpd", "q"), ("bird2", "u")):
            side = lab.Side(
                f"{letter}{tag}",
                lab.make_dir(f"br-{letter}-"),
                CFG2 if kind == "bird2" else CFG16,
                PEER,
            )
            st = made[kind] = Stopper(side, kind, bird16)
            try:
                side.build()
                side.start_peer()
                st.start_listener()
            except Exception as e:  # noqa: BLE001 - reported as the skip reason
                skip_or_fail(f"cannot build the stop lab: {e}")
            st.start()
        for st in made.values():
            st.wait_up()
        yield made
    finally:
        for st in made.values():
            if st.listener is not None and st.listener.poll() is None:
                st.listener.kill()
                st.listener.wait(5)
            st.side.close()
            if not os.environ.get("BR_KEEP"):
                lab.remove_dir(st.side.dir)


def gr_cap(open_hex: str) -> dict:
    """The graceful-restart capability of an OPEN body: restart time and flags."""
    body = bytes.fromhex(open_hex)
    params, i = body[10 : 10 + body[9]], 0
    while i < len(params):
        ptype, plen = params[i], params[i + 1]
        value, i = params[i + 2 : i + 2 + plen], i + 2 + plen
        j = 0
        while ptype == 2 and j < len(value):
            code, clen = value[j], value[j + 1]
            if code == 64:
                word = int.from_bytes(value[j + 2 : j + 4], "big")
                return {"time": word & 0x0FFF, "R": bool(word & 0x8000), "N": bool(word & 0x4000)}
            j += 2 + clen
    raise AssertionError(f"no graceful restart capability in {open_hex}")


def neighbor_restart_time(text: str) -> int:
    """``Restart time: N`` under ``Neighbor capabilities`` of BIRD 2's show protocols all."""
    part = text.split("Neighbor capabilities", 1)[1]
    return int(part.split("Restart time:", 1)[1].split()[0])


def raw_command(path: Path, command: str, timeout: float = 10.0) -> tuple[list[str], bool]:
    """``command`` on a control socket: the lines until the server closes the connection
    (True) or goes quiet for a second (False)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        buf, closed = b"", False
        s.settimeout(1.0)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                data = s.recv(4096)
            except TimeoutError:
                break
            if not data:
                closed = True
                break
            buf += data
    return buf.decode().splitlines(), closed


def start_both(sides) -> None:
    """BIRD 1.6.8 and bgpd-bird started again after a stop, both up."""
    for kind in ("bird16", "bgpd"):
        sides[kind].start()
    for kind in ("bird16", "bgpd"):
        sides[kind].wait_up()


def test_each_protocol_advertises_its_own_restart_time(sides):
    """BIRD 1.6.8 puts each protocol's ``graceful restart time`` in its OPEN; so must
    bgpd-bird (120 to the mesh peer, 10 to the one with its own time), and no N bit
    (RFC 8538), which BIRD 1.6 does not know."""
    seen = {}
    for kind in ("bird16", "bgpd"):
        st = sides[kind]
        opens = [e for e in st.last_conn() if e["ev"] == "open"]
        assert opens, st.listened()
        cap = gr_cap(opens[-1]["hex"])
        seen[kind] = (neighbor_restart_time(st.peer_protocol()), cap["time"], cap["N"])
    assert seen["bird16"] == (120, 10, False), seen
    assert seen["bgpd"] == seen["bird16"], seen


def test_graceful_restart_command_as_bird_2(sides):
    """``graceful restart`` on the control socket: bgpd-bird answers, stops and leaves its
    neighbors holding its routes exactly as BIRD 2.0.12 does; BIRD 1.6.8 does not know the
    command. A start with -R afterwards is a graceful restart."""
    old, closed = raw_command(sides["bird16"].side.sock, "graceful restart", timeout=3)
    assert old[1:] == ["9001 syntax error"] and not closed
    assert sides["bird16"].proc.poll() is None, "BIRD 1.6.8 keeps running"

    got = {}
    for kind in ("bird2", "bgpd"):
        st = sides[kind]
        lines, closed = raw_command(st.side.sock, "graceful restart")
        status = st.wait_exit()
        time.sleep(0.5)
        got[kind] = {
            "reply": lines[1:],
            "closed": closed,
            "status": status,
            "listener": [e["ev"] for e in st.last_conn() if e["ev"] in ("notification", "eof")],
            "peer keeps the route": st.peer_has_route(),
            "peer helps": "Neighbor graceful restart active" in st.peer_protocol(),
        }
    assert got["bird2"] == {
        "reply": ["0025 Graceful restart requested"],
        "closed": True,
        "status": 0,
        "listener": ["eof"],  # no NOTIFICATION
        "peer keeps the route": True,
        "peer helps": True,
    }, got
    assert got["bgpd"] == got["bird2"], got
    assert sides["bgpd"].marker.exists(), "the restart marker for the next start"
    restart_time = json.loads(sides["bgpd"].marker.read_text())["restart_time"]
    assert restart_time == 120, "the longest time advertised"
    for kind in ("bird2", "bgpd"):
        sides[kind].start()
    for kind in ("bird2", "bgpd"):
        sides[kind].wait_up()
    assert not sides["bgpd"].marker.exists(), "taken by the start"


def test_sigterm_as_bird_1_6_8(sides):
    """SIGTERM: the same NOTIFICATION as BIRD 1.6.8's (Cease 6/2, no data) reaches the
    neighbor, BIRD 2 drops the routes at once, exit 0, no restart marker."""
    got = {}
    for kind in ("bird16", "bgpd"):
        st = sides[kind]
        assert st.peer_has_route()
        t0 = time.monotonic()
        status = st.stop(signal.SIGTERM)
        wait_for(lambda st=st: not st.peer_has_route(), 5, f"{kind}: BIRD 2 drops the route")
        dropped = time.monotonic() - t0
        time.sleep(0.3)
        note = [e for e in st.last_conn() if e["ev"] == "notification"]
        got[kind] = {
            "status": status,
            "notifications": [(e["code"], e["subcode"], e["data"]) for e in note],
            "eof": st.last_conn()[-1]["ev"] == "eof",
            "peer's last error": [
                x.strip() for x in st.peer_protocol().splitlines() if "Last error" in x
            ],
            "dropped within 2 s": dropped < 2.0,
        }
        print(f"\n{kind}: SIGTERM to the route gone at BIRD 2: {dropped * 1000:.0f} ms")
    assert got["bird16"] == {
        "status": 0,
        "notifications": [(6, 2, "")],
        "eof": True,
        "peer's last error": ["Last error:       Received: Administrative shutdown"],
        "dropped within 2 s": True,
    }, got
    assert got["bgpd"] == got["bird16"], got
    assert not sides["bgpd"].marker.exists()
    start_both(sides)


def test_down_as_bird_1_6_8(sides):
    """``down``: ``0007 Shutdown requested``, then the same as SIGTERM."""
    got = {}
    for kind in ("bird16", "bgpd"):
        st = sides[kind]
        lines, closed = raw_command(st.side.sock, "down")
        status = st.wait_exit()
        wait_for(lambda st=st: not st.peer_has_route(), 5, f"{kind}: BIRD 2 drops the route")
        time.sleep(0.3)
        note = [e for e in st.last_conn() if e["ev"] == "notification"]
        got[kind] = (lines[1:], closed, status, [(e["code"], e["subcode"]) for e in note])
    assert got["bird16"] == (["0007 Shutdown requested"], True, 0, [(6, 2)]), got
    assert got["bgpd"] == got["bird16"], got
    assert not sides["bgpd"].marker.exists()
    start_both(sides)


def test_bgpd_yaml_makes_sigterm_graceful(sides):
    """``graceful_sigterm: true`` in bgpd.yaml: SIGTERM stops as ``graceful restart``
    does (no NOTIFICATION, the neighbors keep the routes, the marker left)."""
    st = sides["bgpd"]
    yaml_path = st.side.dir / "bgpd.yaml"
    assert st.stop(signal.SIGTERM) == 0  # this run read no bgpd.yaml: a Cease
    yaml_path.write_text("bird:\n  graceful_sigterm: true\n")
    try:
        st.start()
        st.wait_up()
        assert st.stop(signal.SIGTERM) == 0
        time.sleep(0.5)
        assert [e["ev"] for e in st.last_conn() if e["ev"] in ("notification", "eof")] == ["eof"]
        assert st.peer_has_route(), "BIRD 2 keeps the routes as stale"
        assert "Neighbor graceful restart active" in st.peer_protocol()
        assert st.marker.exists()
    finally:
        yaml_path.unlink()
    st.start()
    st.wait_up()

"""The ``bird`` / ``bird6`` process contract of bgpd-bird (sysdep/unix/main.c): argv[0] as
calicoctl looks for it, the pid file, SIGTERM and ``down`` (exit 0, socket and pid file
removed), a second daemon on the same socket, a bad file at start, the fork into the
background, ``-u``/``-g`` on the socket, and bgpd's own JSON socket and metrics from
``bgpd.yaml``. The daemons here run a file with no BGP and no kernel protocol (static and
device only): nothing binds a port or touches a routing table."""

from __future__ import annotations

import grp
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import br_lab as lab
import pytest
from bc_helpers import pid_gone, query, run_client, wait_for

from bgpd.api.client import request

CFG4 = """\
router id 192.0.2.1;
protocol device { }
protocol static {
  route 10.65.0.0/26 blackhole;
  route 10.99.0.0/24 unreachable;
}
"""
CFG6 = """\
router id 192.0.2.1;
protocol device { }
protocol static {
  route 2001:db8:65::/48 blackhole;
}
"""


def ps_contains(pid: int, name: str) -> bool:
    """calicoctl's psContains: argv[0] of /proc/PID/cmdline (split on NUL) is ``name``."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return bool(args) and args[0].decode() == name


class Daemon:
    def __init__(self, tmp: Path, family: int = 4, cfg: str = CFG4) -> None:
        self.dir = tmp
        self.exe = lab.BGPD_BIRD6 if family == 6 else lab.BGPD_BIRD
        self.cfg = tmp / ("bird6.cfg" if family == 6 else "bird.cfg")
        self.cfg.write_text(cfg)
        self.sock = tmp / "bird.ctl"
        self.pid_file = tmp / "bird.pid"
        self.proc: subprocess.Popen | None = None

    def argv(self, *extra: str) -> list[str]:
        return [
            self.exe,
            "-c",
            str(self.cfg),
            "-s",
            str(self.sock),
            "-P",
            str(self.pid_file),
            *extra,
        ]

    def start(self, *extra: str) -> subprocess.Popen:
        self.proc = subprocess.Popen(
            self.argv(*extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(self.sock.exists, 20, "the control socket")
        return self.proc

    def pid(self) -> int:
        return int(self.pid_file.read_text())

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        lab.stop_pid_file(self.pid_file)


@pytest.fixture
def daemons(tmp_path):
    made: list[Daemon] = []

    def make(sub: str = "d", **kw) -> Daemon:
        d = tmp_path / sub
        d.mkdir()
        made.append(Daemon(d, **kw))
        return made[-1]

    try:
        yield make
    finally:
        for d in made:
            d.close()


def test_foreground_argv_pid_file_and_sigterm(daemons):
    d = daemons()
    p = d.start("-d")
    wait_for(d.pid_file.exists, 10, "the pid file")
    assert d.pid() == p.pid
    assert ps_contains(p.pid, "bird")
    assert Path(f"/proc/{p.pid}/comm").read_text().strip() == "bird"
    assert oct(d.sock.stat().st_mode & 0o777) == "0o660"
    r = query(d.sock, "show status", "show protocols", "show route")
    assert r[0] == [f"0001 BIRD {lab.CALICO_VERSION} ready."]
    assert r[1][-1] == "0013 Daemon is up and running"
    assert [ln.split()[0][5:] if ln[:4].isdigit() else ln.split()[0] for ln in r[2][1:-1]] == [
        "device1",
        "static1",
    ]
    assert r[3][0].startswith("1007-10.65.0.0/26       blackhole [static1 ")
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    assert not d.sock.exists() and not d.pid_file.exists()


def test_down_command_stops_the_daemon(daemons):
    d = daemons()
    p = d.start("-d")
    r = query(d.sock, "down")
    assert r[1] == ["0007 Shutdown requested"]
    assert p.wait(15) == 0
    assert not d.sock.exists()


def test_bird6(daemons):
    d = daemons(family=6, cfg=CFG6)
    p = d.start("-d")
    assert ps_contains(p.pid, "bird6")
    r = run_client(
        [lab.BGPD_BIRD.replace("bgpd-bird", "bgpd-birdcl6"), "-s", str(d.sock), "show", "route"]
    )
    assert r.returncode == 0
    assert r.stdout.splitlines()[1].startswith("2001:db8:65::/48   blackhole [static1 ")
    assert query(d.sock, "show status")[1][1] == "1011-Router ID is 192.0.2.1"
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0


def test_a_second_daemon_on_the_socket_gives_up(daemons):
    d = daemons()
    d.start("-d")
    other = daemons("e")
    r = subprocess.run(
        [other.exe, "-c", str(other.cfg), "-s", str(d.sock), "-d"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (r.returncode, r.stderr) == (1, "bird: I found another BIRD running.\n")
    assert query(d.sock, "show status")[1][-1] == "0013 Daemon is up and running"


def test_a_bad_file_stops_the_start(daemons):
    d = daemons(cfg="router id 192.0.2.1;\nprotocol static {\n  route 10.0.0.0/8 blackhole\n}\n")
    r = subprocess.run(d.argv("-d"), capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (1, f"bird: {d.cfg}:4:1 syntax error\n")
    assert not d.sock.exists() and not d.pid_file.exists()


def test_background_as_bird_does(daemons):
    """Without -d or -f the parent returns at once (status 0) and the daemon runs on,
    detached, with the pid file naming it."""
    d = daemons()
    r = subprocess.run(d.argv(), capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    wait_for(d.sock.exists, 20, "the control socket")
    wait_for(d.pid_file.exists, 10, "the pid file")
    pid = d.pid()
    assert ps_contains(pid, "bird")
    assert os.getsid(pid) == pid  # its own session
    assert query(d.sock, "show status")[1][-1] == "0013 Daemon is up and running"
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: pid_gone(pid), 15, "the daemon to exit")
    assert not d.sock.exists()


def test_user_and_group_own_the_socket(daemons):
    d = daemons()
    gid = grp.getgrnam("nogroup").gr_gid if _has_group("nogroup") else 65534
    d.start("-d", "-u", "nobody", "-g", str(gid))
    st = d.sock.stat()
    assert (st.st_uid, st.st_gid) == (65534, gid)
    r = subprocess.run(
        [d.exe, "-c", str(d.cfg), "-s", str(d.dir / "x.ctl"), "-u", "nosuchuser", "-d"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (r.returncode, r.stderr) == (1, "bird: Cannot find user 'nosuchuser'\n")


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bgpd_yaml_adds_the_json_socket_and_metrics(daemons):
    d = daemons()
    port = _free_port()
    json_sock = d.dir / "bgpd.sock"
    (d.dir / "bgpd.yaml").write_text(
        json.dumps(
            {
                "bird": {
                    "control_socket": str(json_sock),
                    "metrics": {"address": "127.0.0.1", "port": port},
                },
                "bird6": {"control_socket": str(d.dir / "bgpd6.sock")},
            }
        )
    )
    p = d.start("-d")
    wait_for(json_sock.exists, 20, "bgpd's JSON socket")
    summary = request(str(json_sock), "show_summary")
    assert summary["router_id"] == "192.0.2.1" and summary["routes"]["ipv4"] == 2
    wait_for(lambda: _get(port, "/metrics") is not None, 20, "the metrics endpoint")
    assert "bgpd_" in _get(port, "/metrics")
    assert _get(port, "/livez") is not None
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    assert not json_sock.exists()
    # a broken bgpd.yaml: named, and nothing starts
    (d.dir / "bgpd.yaml").write_text("bird: {control_sockett: /x}\n")
    r = subprocess.run(d.argv("-d"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith(f"bird: {d.dir / 'bgpd.yaml'}: bird.control_sockett: unknown key")
    (d.dir / "bgpd.yaml").write_text("bird: {graceful_sigterm: 1}\n")
    r = subprocess.run(d.argv("-d"), capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr == (
        f"bird: {d.dir / 'bgpd.yaml'}: bird.graceful_sigterm: expected true or false\n"
    )


def _get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def test_sighup_reload_without_peers(daemons):
    d = daemons()
    p = d.start("-d")
    d.cfg.write_text(
        CFG4.replace("route 10.99.0.0/24 unreachable;", "route 10.98.0.0/24 blackhole;")
    )
    time.sleep(1.1)
    p.send_signal(signal.SIGHUP)
    wait_for(
        lambda: "10.98.0.0/24" in "\n".join(query(d.sock, "show route")[1]), 10, "the new route"
    )
    assert "10.99.0.0/24" not in "\n".join(query(d.sock, "show route")[1])
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0

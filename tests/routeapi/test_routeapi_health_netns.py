"""Health-checked services end to end, inside a network namespace of this test's own.

In the namespace ``ra-hc-PID-N``: bgpd (``ip netns exec NS bgpd run``), a BIRD 2 iBGP
neighbor (``ip netns exec NS bird``) and the checked service (Python's ``http.server`` on
127.0.0.1). The namespace has its own loopback, so nothing here can clash with the other
tests' daemons; an nftables drop inside it makes the service silent without touching the
host. BIRD's view is read with ``birdc`` (its socket is a file, reachable from outside).

- the service's TCP port closes (the server is killed): the peer sees the withdrawal after
  ``fall`` failed checks, i.e. within ``fall × interval`` (plus scheduling noise), and not
  before ``(fall - 1) × interval``; the same when the port goes silent (a drop rule): then
  within ``fall × interval + timeout``;
- a check that flaps (a scripted sequence of results, consumed one per check) is damped by
  rise/fall: the announcements and withdrawals BIRD counted (``Import updates``/``Import
  withdraws``) are those the hysteresis allows, and a service without damping (rise = fall
  = 1) fed the same sequence flaps with it.

Every process is started here and stopped by its PID; the namespace is deleted in teardown.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bgpd_proc
import peers
import pytest
from needs import failed, skip_or_fail

pytestmark = pytest.mark.interop

AS = 65000
BGPD_ADDR, BIRD_ADDR, SERVICE_ADDR = "127.0.0.10", "127.0.0.11", "127.0.0.1"
_n = itertools.count(1)


def ip(*args: str, check: bool = True) -> str:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class NsBird(peers.BirdPeer):
    """BIRD 2 run inside a namespace."""

    def __init__(self, ns: str, **kw) -> None:
        self.ns = ns
        super().__init__(**kw)

    def _command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *super()._command()]


class NsBgpd(bgpd_proc.BgpdProcess):
    """bgpd run inside a namespace (the control socket is a file: reachable from here)."""

    def __init__(self, ns: str, **kw) -> None:
        self.ns = ns
        super().__init__(**kw)

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *super().command()]


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ns = f"ra-hc-{os.getpid()}-{next(_n)}"
        self.procs: list[subprocess.Popen] = []
        self.daemons: list = []
        ip("netns", "add", self.ns)
        ip("-n", self.ns, "link", "set", "lo", "up")
        self.bird = None
        self.d = None
        self.nft_table = None

    # --- processes ------------------------------------------------------------------------

    def start(self, services: list[dict]) -> None:
        self.bird = NsBird(
            self.ns,
            name="bird",
            address=BIRD_ADDR,
            asn=AS,
            neighbors=[{"address": BGPD_ADDR, "asn": AS}],
            workdir=self.tmp / "bird",
        )
        self.daemons.append(self.bird)
        self.bird.start()
        self.d = NsBgpd(
            self.ns,
            name="bgpd",
            address=BGPD_ADDR,
            asn=AS,
            neighbors=[{"address": BIRD_ADDR, "asn": AS}],
            extra={"services": services},
            workdir=self.tmp / "bgpd",
        )
        self.daemons.append(self.d)
        self.d.start()
        self.d.wait_state(BIRD_ADDR)

    def serve(self, port: int) -> subprocess.Popen:
        """The checked service: an HTTP server on 127.0.0.1:PORT in the namespace."""
        p = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "http.server"]
            + ["--bind", SERVICE_ADDR, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.tmp,
            start_new_session=True,
        )
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while f"{SERVICE_ADDR}:{port}" not in self._listening():
            assert p.poll() is None, "http.server exited"
            assert time.monotonic() < deadline, "http.server does not listen"
            time.sleep(0.05)
        return p

    def _listening(self) -> str:
        r = subprocess.run(
            ["ip", "netns", "exec", self.ns, "ss", "-Htln"], capture_output=True, text=True
        )
        return r.stdout

    def kill(self, p: subprocess.Popen) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    def silence(self, port: int) -> None:
        """Drop packets to the service's port inside the namespace (connections hang)."""
        self.nft_table = "ra_hc"
        script = (
            f"table inet {self.nft_table} {{\n"
            "  chain input {\n"
            "    type filter hook input priority 0; policy accept;\n"
            f"    tcp dport {port} drop\n"
            "  }\n"
            "}\n"
        )
        subprocess.run(
            ["ip", "netns", "exec", self.ns, "nft", "-f", "-"],
            input=script,
            text=True,
            check=True,
            timeout=30,
        )

    def unsilence(self) -> None:
        if self.nft_table:
            subprocess.run(
                ["ip", "netns", "exec", self.ns, "nft", "delete", "table", "inet", self.nft_table],
                check=True,
                timeout=30,
            )
            self.nft_table = None

    def close(self, failed: bool) -> None:
        for p in self.procs:
            self.kill(p)
        for dmn in reversed(self.daemons):
            if failed:
                tail = dmn.log_tail(80) if hasattr(dmn, "log_tail") else dmn._log_tail(80)
                sys.stderr.write(f"\n{tail}\n")
            with contextlib.suppress(Exception):
                dmn.stop()
        ip("netns", "del", self.ns, check=False)

    # --- BIRD's side ----------------------------------------------------------------------

    def has(self, prefix: str) -> bool:
        fam = "ipv6" if ":" in prefix else "ipv4"
        return prefix in self.bird.routes(fam)

    def wait(self, prefix: str, present: bool, timeout: float) -> float:
        """Poll BIRD until ``prefix`` is (not) there; the time it took."""
        t0 = time.monotonic()
        while self.has(prefix) != present:
            assert time.monotonic() - t0 < timeout, (
                f"{prefix} present={not present} after {timeout}s"
            )
            time.sleep(0.05)
        return time.monotonic() - t0

    def counts(self, channel: str) -> tuple[int, int]:
        """(announcements, withdrawals) BIRD received from bgpd in ``channel``."""
        out = self.bird.birdc("show", "protocols", "all", self.bird.protocol_name(BGPD_ADDR))
        part = out.split(f"Channel {channel}")[1].split("Channel ")[0]
        updates = int(re.search(r"Import updates:\s+(\d+)", part).group(1))
        withdraws = int(re.search(r"Import withdraws:\s+(\d+)", part).group(1))
        return updates, withdraws


@pytest.fixture
def lab(request):
    if os.geteuid() != 0:
        skip_or_fail("network namespaces need root")
    for binary in ("bird", "birdc", "nft", "ss"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            skip_or_fail(f"{binary} is missing (apt-get install bird2 nftables iproute2)")
    tmp = Path(tempfile.mkdtemp(prefix="ra-hc-"))
    lab = Lab(tmp)
    try:
        yield lab
    finally:
        lab.close(failed(request.node))
        shutil.rmtree(tmp, ignore_errors=True)


def test_closed_port_withdrawn_within_fall_intervals(lab):
    port = 18080
    interval, fall, rise, timeout = 1.0, 3, 2, 0.5
    server = lab.serve(port)
    lab.start(
        [
            {
                "name": "web",
                "prefix": "192.0.2.80/32",
                "tcp": f"{SERVICE_ADDR}:{port}",
                "interval": interval,
                "timeout": timeout,
                "rise": rise,
                "fall": fall,
            }
        ]
    )
    lab.wait("192.0.2.80/32", True, timeout=10)

    # the port closes: connections are refused
    lab.kill(server)
    took = lab.wait("192.0.2.80/32", False, timeout=10)
    print(f"port closed: withdrawn after {took:.2f}s (fall x interval = {fall * interval:g}s)")
    assert (fall - 1) * interval - 0.2 < took < fall * interval + 0.8, took
    svc = lab.d.request("show_services")["services"][0]
    assert svc["state"] == "down" and svc["routes"] == "withdrawn"
    assert "refused" in svc["last"]["detail"].lower(), svc["last"]

    # it comes back: announced after `rise` passes in a row
    lab.serve(port)
    took = lab.wait("192.0.2.80/32", True, timeout=10)
    print(f"port open again: announced after {took:.2f}s (rise x interval = {rise * interval:g}s)")
    assert (rise - 1) * interval - 0.2 < took < rise * interval + 0.8, took

    # the port goes silent (packets dropped): every check waits for its timeout
    lab.silence(port)
    took = lab.wait("192.0.2.80/32", False, timeout=10)
    print(f"port silent: withdrawn after {took:.2f}s (fall x interval + timeout = 3.5s)")
    assert (fall - 1) * interval - 0.2 < took < fall * interval + timeout + 0.8, took
    svc = lab.d.request("show_services")["services"][0]
    assert svc["last"]["detail"] == f"no answer in {timeout:g}s", svc["last"]
    lab.unsilence()
    lab.wait("192.0.2.80/32", True, timeout=10)
    text = lab.d.cli("show", "services").stdout
    assert "web" in text and "up" in text


FLAP_SCRIPT = """\
# one result per run from $1 (a string of 1 and 0), the run count kept in $2; after the
# end of the string: its last result
n=$(cat "$2" 2>/dev/null || echo 0)
echo $((n + 1)) > "$2"
rest="$1"
i=0
while [ $i -lt $n ] && [ ${#rest} -gt 1 ]; do rest=${rest#?}; i=$((i + 1)); done
[ "${rest%"${rest#?}"}" = 1 ]
"""


def oracle(pattern: str, rise: int, fall: int) -> tuple[int, int]:
    """(announcements, withdrawals) a peer sees for ``pattern`` under rise/fall (the first
    result decides at once; nothing was announced before it)."""
    state = None
    streak = ups = downs = 0
    for c in pattern:
        ok = c == "1"
        if state is None:
            state = ok
            ups += ok
        elif ok == state:
            streak = 0
        else:
            streak += 1
            if streak >= (rise if ok else fall):
                state, streak = ok, 0
                ups += ok
                downs += not ok
    return ups, downs


def test_flapping_check_is_damped(lab):
    # a steady start (the session is up before the first failure), flaps, a real outage
    steady = 10
    pattern = "1" * steady + "01" * 6 + "000" + "111"
    script = lab.tmp / "flap.sh"
    script.write_text(FLAP_SCRIPT)
    interval = 0.3

    def service(name, prefix, rise, fall, **extra):
        return {
            "name": name,
            "prefix": prefix,
            "command": f"sh {script} {pattern} {lab.tmp / (name + '.count')}",
            "interval": interval,
            "rise": rise,
            "fall": fall,
            **extra,
        }

    lab.start(
        [
            service("damped", "192.0.2.90/32", 3, 3),  # counted in BIRD's ipv4 channel
            service("raw", "2001:db8:90::/64", 1, 1, next_hop="2001:db8::1"),  # ipv6 channel
        ]
    )

    def runs() -> list[int]:
        out = []
        for n in ("damped", "raw"):
            f = lab.tmp / f"{n}.count"
            out.append(int(f.read_text() or 0) if f.exists() else 0)
        return out

    lab.wait("192.0.2.90/32", True, timeout=10)
    lab.wait("2001:db8:90::/64", True, timeout=10)
    assert max(runs()) < steady, f"BIRD got the routes too late to see every flap: {runs()}"
    deadline = time.monotonic() + len(pattern) * interval * 3 + 10
    while min(runs()) <= len(pattern):  # the whole sequence, and one more check
        assert time.monotonic() < deadline, runs()
        time.sleep(0.1)
    time.sleep(0.5)  # the last UPDATE reaches BIRD
    damped, raw = lab.counts("ipv4"), lab.counts("ipv6")
    print(f"BIRD saw (announcements, withdrawals): damped {damped}, undamped {raw}")
    assert damped == oracle(pattern, 3, 3) == (2, 1), damped
    assert raw == oracle(pattern, 1, 1) == (8, 7), raw
    assert lab.has("192.0.2.90/32") and lab.has("2001:db8:90::/64")
    states = {s["name"]: s for s in lab.d.request("show_services")["services"]}
    assert states["damped"]["changes"] == 2 and states["raw"]["changes"] == 14
    assert states["damped"]["failures"] == pattern.count("0")

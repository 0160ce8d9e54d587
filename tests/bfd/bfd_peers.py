"""Network namespaces, path cuts and BFD daemons for the interop tests and bench/bfd.py.

* :class:`Link`: two namespaces ``bfdt-<pid>-<n>-a`` / ``-b`` joined by a veth pair, with
  IPv4 and IPv6 addresses (more on demand), removed by ``close()``;
* :func:`cut` / :func:`heal`: an nftables table in a namespace that drops everything on the
  veth both ways (a silent path failure), and its removal;
* :class:`BgpdBfd`: ``python -m bgpd.bfd`` in a namespace, its JSON lines collected by a
  thread, driven through its stdin commands;
* :class:`BirdBfd`: BIRD 2 with ``protocol bfd`` and one ``neighbor`` per session;
* :class:`FrrBfdd`: FRR's bfdd alone (no zebra, no watchfrr), peers from its config file,
  state from ``vtysh -d bfdd -c 'show bfd peers json'``.

Every process is started by us and killed by its own pid; every temp dir has the ``bfdt``
prefix and is removed unless ``BGPD_KEEP_PEER_DIRS=1``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from needs import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
BIRD = "/usr/sbin/bird"
BIRDC = "/usr/sbin/birdc"
BFDD = "/usr/lib/frr/bfdd"
VTYSH = "vtysh"
PREFIX = "bfdt"

_counter = itertools.count(1)


def run(*cmd: str, check: bool = True, timeout: float = 30) -> str:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {r.returncode} {r.stderr.strip()}")
    return r.stdout


def wait_until(pred, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def workdir(tag: str) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-{tag}-"))
    shutil.chown(d, "frr", "frr") if _has_user("frr") else None
    d.chmod(0o755)
    return d


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


_netns_ok: str | None | bool = False


def require_netns() -> None:
    """Skip (or fail under BGPD_REQUIRE_PEERS=1) without root, ip, nft or namespaces."""
    global _netns_ok
    if _netns_ok is False:
        if os.geteuid() != 0:
            _netns_ok = "BFD interop tests need root (network namespaces)"
        elif not shutil.which("ip"):
            _netns_ok = "BFD interop tests need iproute2: apt-get install iproute2"
        elif not shutil.which("nft"):
            _netns_ok = "BFD interop tests need nftables to cut paths: apt-get install nftables"
        else:
            name = f"{PREFIX}-probe-{os.getpid()}"
            r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
            _netns_ok = None if r.returncode == 0 else f"cannot create a namespace: {r.stderr}"
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    if _netns_ok:
        skip_or_fail(_netns_ok)


def require_binary(path: str, package: str) -> None:
    if not (Path(path).is_file() or shutil.which(path)):
        skip_or_fail(f"{path} not found: apt-get install {package} (bird2 and frr are needed)")


def keep_dirs() -> bool:
    return os.environ.get("BGPD_KEEP_PEER_DIRS", "") not in ("", "0")


# --- namespaces ------------------------------------------------------------------------------


@dataclass
class Link:
    """Namespaces ``a`` (bgpd) and ``b`` (the peer) joined by veth ``bfdta`` <-> ``bfdtb``.

    ``v4(i)``/``v6(i)`` are the i-th address pair (1-based): (a side, b side).
    """

    a: str
    b: str
    a_if: str = "bfdta"
    b_if: str = "bfdtb"
    pairs: int = 1
    made: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, pairs: int = 1) -> Link:
        n = next(_counter)
        base = f"{PREFIX}-{os.getpid()}-{n}"
        link = cls(f"{base}-a", f"{base}-b", pairs=pairs)
        try:
            for ns in (link.a, link.b):
                run("ip", "netns", "add", ns)
                link.made.append(ns)
                run("ip", "-n", ns, "link", "set", "lo", "up")
                # no duplicate address detection on the new veth: its link-local address
                # is usable at once (DAD costs 1-2 s per test; nothing else is on the link)
                run("ip", "netns", "exec", ns, "sysctl", "-qw",
                    "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")  # fmt: skip
            run("ip", "-n", link.a, "link", "add", link.a_if, "type", "veth",
                "peer", "name", link.b_if, "netns", link.b)  # fmt: skip
            batch_a, batch_b = [], []
            for i in range(1, pairs + 1):
                (a4, b4), (a6, b6) = link.v4(i), link.v6(i)
                batch_a += [
                    f"addr add {a4}/16 dev {link.a_if}",
                    f"addr add {a6}/64 dev {link.a_if} nodad",
                ]
                batch_b += [
                    f"addr add {b4}/16 dev {link.b_if}",
                    f"addr add {b6}/64 dev {link.b_if} nodad",
                ]
            for ns, batch, ifname in ((link.a, batch_a, link.a_if), (link.b, batch_b, link.b_if)):
                _ip_batch(ns, batch + [f"link set {ifname} up"])
            # The link-local addresses are not tentative (no DAD): checked, not assumed.
            wait_until(
                lambda: (
                    "tentative" not in run("ip", "-n", link.b, "-6", "addr", "show", link.b_if)
                    and "tentative" not in run("ip", "-n", link.a, "-6", "addr", "show", link.a_if)
                ),
                10,
                "IPv6 DAD",
            )
        except BaseException:
            link.close()
            raise
        return link

    @staticmethod
    def v4(i: int = 1) -> tuple[str, str]:
        return f"10.213.{i // 250}.{i % 250 + 1}", f"10.213.{128 + i // 250}.{i % 250 + 1}"

    @staticmethod
    def v6(i: int = 1) -> tuple[str, str]:
        return f"fd00:bfd::a:{i:x}", f"fd00:bfd::b:{i:x}"

    def link_local(self, side: str) -> str:
        ns, ifname = (self.a, self.a_if) if side == "a" else (self.b, self.b_if)
        out = run("ip", "-n", ns, "-6", "-o", "addr", "show", ifname, "scope", "link")
        return out.split()[3].split("/")[0]

    def close(self) -> None:
        for ns in reversed(self.made):
            run("ip", "netns", "del", ns, check=False)
        self.made.clear()


def _ip_batch(ns: str, lines: list[str]) -> None:
    r = subprocess.run(
        ["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    if r.returncode != 0:
        raise AssertionError(f"ip -n {ns} -batch: {r.stderr.strip()}")


NFT_TABLE = "bfdt_cut"


def cut(ns: str, ifname: str) -> None:
    """Drop every packet in and out of ``ifname`` in ``ns`` (nftables, silently)."""
    rules = (
        f"table inet {NFT_TABLE} {{\n"
        f'  chain in {{ type filter hook input priority -300; iifname "{ifname}" drop; }}\n'
        f'  chain out {{ type filter hook output priority -300; oifname "{ifname}" drop; }}\n'
        "}\n"
    )
    r = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"], input=rules, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise AssertionError(f"nft in {ns}: {r.stderr.strip()}")


def heal(ns: str) -> None:
    run("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", NFT_TABLE, check=False)


# --- processes ---------------------------------------------------------------------------------


class _Proc:
    """A process we started (killed by its pid) with its output in a file."""

    proc: subprocess.Popen | None = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def cpu_seconds(self) -> float:
        """utime + stime of the process (from /proc/PID/stat)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick


class BgpdBfd(_Proc):
    """``python -m bgpd.bfd`` in namespace ``ns`` with ``--commands``; events in ``lines``."""

    def __init__(self, ns: str, args: list[str], *, log_level: str = "warning") -> None:
        self.ns = ns
        self.args = args
        self.log_level = log_level
        self.lines: list[dict] = []
        self.stderr_path: Path | None = None
        self._q: queue.Queue = queue.Queue()
        self._dir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-bgpd-"))

    def start(self) -> BgpdBfd:
        self.lines.clear()
        self.stderr_path = self._dir / "stderr.log"
        cmd = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "bgpd.bfd", "--commands",
               "--log-level", self.log_level, *self.args]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.stderr_path, "ab"),  # noqa: SIM115 - lives as long as the process
            env=env,
            cwd=ROOT,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        self.wait_event(lambda e: e["event"] == "started", 20, "the runner to start")
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            self.lines.append(obj)
            self._q.put(obj)

    def command(self, text: str) -> None:
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def wait_event(self, pred, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        for e in list(self.lines):
            if pred(e):
                return e
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; {self.tail()}"
                )
            try:
                e = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if pred(e):
                return e

    def states(self, peer: str | None = None) -> list[dict]:
        return [
            e for e in self.lines if e["event"] == "state" and (peer is None or e["peer"] == peer)
        ]

    def state(self, peer: str | None = None) -> str | None:
        s = self.states(peer)
        return s[-1]["new"] if s else None

    def wait_state(self, new: str, *, after: float = 0.0, peer: str | None = None,
                   timeout: float = 10.0) -> dict:  # fmt: skip
        """The first state event to ``new`` with monotonic time ``t`` >= ``after``."""
        return self.wait_event(
            lambda e: e["event"] == "state" and e["new"] == new and e["t"] >= after
            and (peer is None or e["peer"] == peer),
            timeout,
            f"bgpd's session {peer or ''} {new} after {after}",
        )  # fmt: skip

    def snapshot(self, timeout: float = 10.0) -> dict:
        n = len(self.lines)
        self.command("snapshot")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.lines[n:]:
                if e["event"] == "snapshot":
                    return e
            time.sleep(0.02)
        raise AssertionError(f"no snapshot; {self.tail()}")

    def tail(self) -> str:
        err = (
            self.stderr_path.read_text()[-2000:]
            if self.stderr_path and self.stderr_path.exists()
            else ""
        )
        return f"last lines: {self.lines[-5:]}; stderr: {err}"

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        if not keep_dirs():
            shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class Neighbor:
    peer: str  # bgpd's address, seen from the daemon
    local: str  # the daemon's address
    multihop: bool = False


class BirdBfd(_Proc):
    """BIRD 2 in namespace ``ns`` with ``protocol bfd``: one ``neighbor`` per session."""

    def __init__(self, ns: str, ifname: str, neighbors: list[Neighbor], *, interval_ms: int = 300,
                 multiplier: int = 3, auth: tuple[str, int, str] | None = None,
                 router_id: str = "10.213.128.1") -> None:  # fmt: skip
        self.ns = ns
        self.ifname = ifname
        self.neighbors = neighbors
        self.interval_ms = interval_ms
        self.multiplier = multiplier
        self.auth = auth  # (BIRD's authentication words, key id, secret)
        self.router_id = router_id
        self.dir = workdir("bird")
        self.sock = self.dir / "bird.ctl"

    def config(self) -> str:
        opts = (f"min rx interval {self.interval_ms} ms; min tx interval {self.interval_ms} ms; "
                f"multiplier {self.multiplier};")  # fmt: skip
        if self.auth:
            words, key_id, secret = self.auth
            opts += f' authentication {words}; password "{secret}" {{ id {key_id}; }};'
        lines = [
            f"router id {self.router_id};",
            f'log "{self.dir}/bird.log" all;',
            "protocol device { scan time 10; }",
            "protocol bfd {",
            f'  interface "{self.ifname}" {{ {opts} }};',
            f"  multihop {{ {opts} }};",
        ]
        for n in self.neighbors:
            if n.multihop:
                lines.append(f"  neighbor {n.peer} local {n.local} multihop yes;")
            else:
                lines.append(f'  neighbor {n.peer} dev "{self.ifname}" local {n.local};')
        lines.append("}")
        return "\n".join(lines) + "\n"

    def start(self) -> BirdBfd:
        conf = self.dir / "bird.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                BIRD,
                "-f",
                "-c",
                str(conf),
                "-s",
                str(self.sock),
                "-P",
                str(self.dir / "bird.pid"),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),  # noqa: SIM115
        )
        wait_until(lambda: self.sock.exists() or self.proc.poll() is not None, 10, "BIRD's socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"BIRD exited: {(self.dir / 'stderr.log').read_text()}")
        return self

    def sessions(self) -> dict[str, str]:
        """peer address -> state, from ``show bfd sessions``."""
        out = run(BIRDC, "-s", str(self.sock), "show", "bfd", "sessions", check=False, timeout=10)
        states = {}
        for line in out.splitlines():
            words = line.split()
            if len(words) < 3:
                continue
            try:
                addr = str(ipaddress.ip_address(words[0]))
            except ValueError:
                continue
            for w in words[1:4]:
                if w in ("Up", "Down", "Init", "AdminDown"):
                    states[addr] = w
                    break
        return states

    def state(self, peer: str) -> str | None:
        return self.sessions().get(peer)

    def log(self) -> str:
        p = self.dir / "bird.log"
        return p.read_text()[-3000:] if p.exists() else ""

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        if not keep_dirs():
            shutil.rmtree(self.dir, ignore_errors=True)


class FrrBfdd(_Proc):
    """FRR's bfdd alone in namespace ``ns``: ``bfdd -u frr -g frr -f CONF --vty_socket DIR
    -P 0 --bfdctl SOCK`` (no zebra, no watchfrr); peers from the config file."""

    def __init__(self, ns: str, neighbors: list[Neighbor], *, interval_ms: int = 300,
                 multiplier: int = 3) -> None:  # fmt: skip
        self.ns = ns
        self.neighbors = neighbors
        self.interval_ms = interval_ms
        self.multiplier = multiplier
        self.dir = workdir("frr")

    def config(self) -> str:
        lines = [f"log file {self.dir}/bfdd.log informational", "bfd"]
        for n in self.neighbors:
            hop = " multihop" if n.multihop else ""
            lines += [
                f" peer {n.peer}{hop} local-address {n.local}",
                f"  receive-interval {self.interval_ms}",
                f"  transmit-interval {self.interval_ms}",
                f"  detect-multiplier {self.multiplier}",
                " !",
            ]
        return "\n".join(lines + ["!"]) + "\n"

    def start(self) -> FrrBfdd:
        conf = self.dir / "bfdd.conf"
        conf.write_text(self.config())
        shutil.chown(conf, "frr", "frr")
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                BFDD,
                "-u",
                "frr",
                "-g",
                "frr",
                "-f",
                str(conf),
                "--vty_socket",
                str(self.dir),
                "-i",
                str(self.dir / "bfdd.pid"),
                "-P",
                "0",
                "--bfdctl",
                str(self.dir / "bfdd.sock"),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),  # noqa: SIM115
        )
        wait_until(
            lambda: (self.dir / "bfdd.vty").exists() or self.proc.poll() is not None,
            10,
            "bfdd's vty socket",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"bfdd exited: {(self.dir / 'stderr.log').read_text()}")
        return self

    def peers(self) -> list[dict]:
        out = run(VTYSH, "--vty_socket", str(self.dir), "-d", "bfdd", "-c", "show bfd peers json",
                  check=False, timeout=20)  # fmt: skip
        try:
            return json.loads(out)
        except ValueError:
            return []

    def counters(self) -> list[dict]:
        out = run(VTYSH, "--vty_socket", str(self.dir), "-d", "bfdd", "-c",
                  "show bfd peers counters json", check=False, timeout=20)  # fmt: skip
        try:
            return json.loads(out)
        except ValueError:
            return []

    def state(self, peer: str) -> str | None:
        for p in self.peers():
            if p.get("peer") == peer:
                return p.get("status")
        return None

    def log(self) -> str:
        p = self.dir / "bfdd.log"
        return p.read_text()[-3000:] if p.exists() else ""

    def close(self) -> None:
        self.kill(signal.SIGTERM)
        if not keep_dirs():
            shutil.rmtree(self.dir, ignore_errors=True)

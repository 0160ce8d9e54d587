"""The password lab: Calico's live TCP MD5 password changes (confd's golden
``compiled_templates/password/step1..6``) run by a node daemon (BIRD 1.6.8 or bgpd-bird)
against three BIRD 2 peers that follow the same steps.

One side (:class:`PwSide`) is two network namespaces joined by a veth pair:

* ``<tag>n``, the node: the node address of the golden file (its ``router id`` and every
  ``source address``) on ``pwn0``; the daemon under test runs there on the step's
  ``bird.cfg`` (with its ``bird_aggr.cfg`` and ``bird_ipam.cfg``), ``-R -s bird.ctl -d -c
  bird.cfg`` as Calico's runit runs it, and gets SIGHUP at each step;
* ``<tag>p``, the peers: the three neighbor addresses on ``pwp0``, one BIRD 2 process per
  address (``strict bind``: each binds only its own address), an iBGP peer of the node with
  TCP MD5 when the step gives its protocol a password, announcing one network of its own
  (``10.99.<i>.0/24``). A step reconfigures each peer (``birdc configure``), as the other
  side of a Calico peering follows the same Secret.

Everything is read from the golden files at test time (the corpus is never copied into the
project); every daemon is stopped by pid and both namespaces deleted by :meth:`close`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import br_lab as lab

GOLDEN = Path("calico-confd/confd/tests/compiled_templates/password")
FILES = ("bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg")  # bird.cfg includes the other two
STEPS = range(1, 7)
PLEN = 16  # 10.24.0.1, .0.2, .0.3 and 10.24.10.10 share one link


@dataclass(frozen=True)
class Peer:
    name: str  # the protocol's name (Node_10_24_0_2)
    address: str
    asn: int
    password: str | None


@dataclass(frozen=True)
class Step:
    n: int
    texts: dict  # file name -> text
    router_id: str
    local_as: int
    peers: tuple  # Peer, in the file's order

    @property
    def source(self) -> str:
        """The node's address: every protocol's ``source address`` (one value)."""
        (src,) = set(self.sources)
        return src

    @property
    def sources(self) -> list[str]:
        return re.findall(r"source address ([\d.]+);", self.texts["bird.cfg"])

    def password(self, name: str) -> str | None:
        return next(p.password for p in self.peers if p.name == name)


_PROTO = re.compile(r"^protocol bgp (\S+) from bgp_template \{\n(.*?)^\}", re.M | re.S)


def read_step(corpora: Path, n: int) -> Step:
    d = corpora / GOLDEN / f"step{n}"
    texts = {f: (d / f).read_text() for f in FILES}
    cfg = texts["bird.cfg"]
    peers = []
    for name, body in _PROTO.findall(cfg):
        (addr, asn) = re.search(r"neighbor ([\d.]+) as (\d+);", body).groups()
        pw = re.search(r'password "([^"]*)";', body)
        peers.append(Peer(name, addr, int(asn), pw.group(1) if pw else None))
    (rid,) = re.findall(r"^router id ([\d.]+);", cfg, re.M)
    (las,) = re.findall(r"^\s*local as (\d+);", cfg, re.M)
    return Step(n, texts, rid, int(las), tuple(peers))


def peer_conf(step: Step, i: int, peer: Peer) -> str:
    """BIRD 2 as ``peer``: iBGP to the node, the step's password, one network announced.
    Short timers on this side (the golden file's are fixed: connect delay 2, retry 5)."""
    pw = f'  password "{peer.password}";\n' if peer.password is not None else ""
    return f"""\
router id {peer.address};
log "peer{i}.log" all;
protocol device {{ }}
protocol static s{i} {{
  ipv4;
  route {peer_net(i)} blackhole;
}}
protocol bgp node {{
  local {peer.address} as {peer.asn};
  neighbor {step.source} as {step.local_as};
  debug {{ states, events, packets }};
  strict bind on;
  multihop;
  graceful restart on;
  connect delay time 1;
  connect retry time 3;
  error wait time 1,2;
{pw}  ipv4 {{ import all; export all; }};
}}
"""


def peer_net(i: int) -> str:
    return f"10.99.{i}.0/24"


def netns(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", *args], capture_output=True, text=True, check=check, timeout=20
    )


_MD5_COUNTERS = ("TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure")


def md5_counters(ns: str) -> dict[str, int]:
    """The kernel's TCP MD5 drop counters of namespace ``ns`` (/proc/net/netstat there)."""
    lines = netns(ns, "cat", "/proc/net/netstat").stdout.splitlines()
    for head, vals in zip(lines[::2], lines[1::2], strict=False):
        if head.startswith("TcpExt:"):
            row = dict(zip(head.split()[1:], map(int, vals.split()[1:]), strict=True))
            return {k: row.get(k, 0) for k in _MD5_COUNTERS}
    return dict.fromkeys(_MD5_COUNTERS, 0)


def bgp_connections(ns: str) -> list[tuple[str, bool]]:
    """The established TCP connections to or from port 179 in ``ns``: (remote address,
    whether the socket carries a TCP MD5 key)."""
    out = netns(ns, "ss", "-Htnie", "state", "established", "( sport = :179 or dport = :179 )")
    conns: list[tuple[str, bool]] = []
    for line in out.stdout.splitlines():
        if not line.startswith((" ", "\t")):
            fields = line.split()
            if len(fields) >= 4 and ":" in fields[3]:
                conns.append((fields[3].rsplit(":", 1)[0], False))
        elif conns and "md5keys:" in line:
            conns[-1] = (conns[-1][0], True)
    return conns


@dataclass
class Row:
    """One protocol of ``show protocols all``."""

    state: str  # up / start / down
    since: str
    info: str  # Established, Connect, Active, ...
    imported: int
    last_error: str

    @property
    def established(self) -> bool:
        return self.state == "up" and self.info.startswith("Established")


_CODE = re.compile(r"^(\d{4})[- ]")


def parse_protocols(lines: list[str], names: list[str]) -> dict[str, Row]:
    """``show protocols all`` (raw reply lines) -> {name: Row} for ``names``."""
    rows: dict[str, Row] = {}
    cur = None
    for raw in lines:
        line = _CODE.sub("", raw)
        first = line.split()[0] if line.strip() else ""
        if raw.startswith("1002-") and first in names:
            f = line.split()
            cur = Row(f[3], f[4], " ".join(f[5:]), 0, "")
            rows[first] = cur
            continue
        if raw.startswith("1002-"):
            cur = None
        if cur is None:
            continue
        m = re.search(r"Routes:\s+(\d+) imported", line)
        if m:
            cur.imported = int(m.group(1))
        m = re.search(r"Last error:\s+(.*)$", line)
        if m:
            cur.last_error = m.group(1).strip()
    return rows


@dataclass
class PwSide:
    """The node daemon (``kind``: ``bird`` for BIRD 1.6.8, ``bgpd`` for bgpd-bird) and its
    three BIRD 2 peers, in two namespaces of their own."""

    kind: str
    tag: str
    dir: Path
    node: str = ""
    peers_ns: str = ""
    made: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    pid_files: list[Path] = field(default_factory=list)

    @property
    def sock(self) -> Path:
        return self.dir / "bird.ctl"

    @property
    def log(self) -> Path:
        return self.dir / "daemon.log"

    def build(self, step: Step) -> None:
        self.node, self.peers_ns = f"{self.tag}n", f"{self.tag}p"
        for ns in (self.node, self.peers_ns):
            lab.ip("netns", "add", ns)
            self.made.append(ns)
            lab.ip("-n", ns, "link", "set", "lo", "up")
        lab.ip("-n", self.node, "link", "add", "pwn0", "type", "veth", "peer", "name", "pwp0")
        lab.ip("-n", self.node, "link", "set", "pwp0", "netns", self.peers_ns)
        lab.ip("-n", self.node, "addr", "add", f"{step.source}/{PLEN}", "dev", "pwn0")
        for p in step.peers:
            lab.ip("-n", self.peers_ns, "addr", "add", f"{p.address}/{PLEN}", "dev", "pwp0")
        lab.ip("-n", self.node, "link", "set", "pwn0", "up")
        lab.ip("-n", self.peers_ns, "link", "set", "pwp0", "up")

    def write_step(self, step: Step) -> None:
        for name, text in step.texts.items():
            (self.dir / name).write_text(text)

    def start_node(self, bird16: Path) -> None:
        """``bird -R -s bird.ctl -d -c bird.cfg`` (Calico's runit line) in the node
        namespace; ``ip netns exec`` execs the daemon, so the Popen pid is the daemon's."""
        exe = str(bird16 / "bird") if self.kind == "bird" else lab.BGPD_BIRD
        argv = ["ip", "netns", "exec", self.node, exe, "-R", "-s", "bird.ctl", "-d"]
        argv += ["-c", "bird.cfg"]
        with open(self.log, "a") as f:
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, cwd=self.dir)

    def hup(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, f"{self.kind} is not running"
        self.proc.send_signal(signal.SIGHUP)

    def start_peers(self, step: Step) -> None:
        for i, p in enumerate(step.peers, 1):
            (self.dir / f"peer{i}.conf").write_text(peer_conf(step, i, p))
            pid = self.dir / f"peer{i}.pid"
            self.pid_files.append(pid)
            argv = [self.peers_ns, lab.BIRD2, "-c", f"peer{i}.conf", "-s", f"peer{i}.ctl"]
            subprocess.run(
                ["ip", "netns", "exec", *argv, "-P", pid.name],
                cwd=self.dir,
                check=True,
                capture_output=True,
                timeout=20,
            )

    def birdc2(self, i: int, *cmd: str) -> str:
        sock = str(self.dir / f"peer{i}.ctl")
        return netns(self.peers_ns, "birdc", "-s", sock, *cmd, check=False).stdout

    def reconfigure_peers(self, step: Step) -> None:
        """Every peer re-reads its file (those whose password did not change too: BIRD 2
        keeps their sessions)."""
        for i, p in enumerate(step.peers, 1):
            (self.dir / f"peer{i}.conf").write_text(peer_conf(step, i, p))
            out = self.birdc2(i, "configure")
            assert "Reconfigur" in out, f"{self.tag} peer {p.address}: {out}"

    def protocols(self, names: list[str]) -> dict[str, Row]:
        return parse_protocols(lab_query(self.sock, "show protocols all"), names)

    def close(self) -> None:
        p = self.proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for pid_file in self.pid_files:
            lab.stop_pid_file(pid_file)
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()


def lab_query(sock: Path, command: str) -> list[str]:
    from bc_helpers import query

    return query(sock, command)[1]


def side_tag(kind: str) -> str:
    """``pwo<pid>`` for BIRD 1.6.8 (the oracle), ``pwg<pid>`` for bgpd-bird."""
    return f"pw{'o' if kind == 'bird' else 'g'}{os.getpid() % 10000}"

"""Calico route reflector on a confd-style BIRD config: bgpd against BIRD 1.6.8.

A route-reflector node R runs the three files confd writes for a Calico node that has a
``routeReflectorClusterID`` (``bird.cfg``, ``bird_aggr.cfg``, ``bird_ipam.cfg``), shaped as
confd's golden output for route reflectors
(``confd/tests/compiled_templates/explicit_peering/route_reflector/``): the kernel, device
and direct protocols, ``template bgp bgp_template`` (``add paths on``, ``graceful restart``,
``gateway recursive``...) and one ``protocol bgp Node_<ip> from bgp_template`` per node with
the inline import filter, the inline export filter calling
``calico_export_to_bgp_peers(true)``, ``rr client`` and ``rr cluster id``. Every route
therefore runs the RR's import filter once and the export filter once per client, and the
kernel protocol's ``calico_kernel_programming`` once.

The same files run under BIRD 1.6.8 (Calico's fork's base; ``tools/bird16.sh``) and under
bgpd (``bgpd run --bird bird.cfg --control-socket PATH``), one after the other in the same
run, each in a fresh pair of network namespaces (names ``cr-<pid>-<k>-r`` and ``-c``), so
that R's kernel table (where the kernel protocol writes) is private:

* ``-r``: R alone, its node IP 10.191.0.1/24 on ``crr0``, the nodes' network 10.192.0.0/16
  routed ``via 10.191.0.2`` (BIRD learns that route from the kernel and resolves the BGP next
  hops through it: ``gateway recursive``; one neighbour entry, not a thousand);
* ``-c``: the N nodes (default 1,000), minimal BGP speakers in ONE extra process (fork,
  ``selectors``/epoll, non-blocking sockets): node i is ``10.192.B.H`` (B = 1 + i // 250,
  H = 1 + i % 250; an AnyIP ``local 10.192.0.0/16 dev lo`` route lets one listening socket
  answer for all of them). Node i announces its own block ``192.168.0.0/26 + 64 i`` inside
  the IP pool 192.168.0.0/16, with its own address as NEXT_HOP and LOCAL_PREF
  2147482623 (2^31 - 1 - 1024: what a Calico node's export filter gives its blackhole block),
  then an End-of-RIB. Its OPEN carries what a Calico node's BIRD sends: IPv4 unicast, route
  refresh, graceful restart (120 s), four-octet AS, ADD-PATH send/receive; hold time 240 s
  (BIRD's default: Calico does not set it), so keepalives every 80 s.

The nodes are passive: confd writes the reflector's ``Node_*`` protocols without ``passive
on``, so R connects to all of them as soon as it starts (``connect delay time 2``), as a
reflector does after a restart. Nothing of bgpd runs on the nodes' side except
``bgpd.wire``'s encoders for their OPEN and UPDATE; their checks parse what R sends with
code of their own.

Phases of a run, per implementation:

1. the namespaces, the confd files in a fresh directory, the node process listening;
2. R starts (``bird -d`` as calico-node's runit starts it, stderr to a file as svlogd does,
   without ``-R``; bgpd with ``--log-level info`` to a file);
3. settle: from the first connection R opens to the moment every session is Established
   and every node holds exactly the N - 1 other blocks (plus R's own block, ``--rr-blocks``):
   N (N - 1) reflected routes, one UPDATE each (every block has its own next hop and
   ORIGINATOR_ID). Reported: that time, R's CPU seconds (utime + stime from /proc, read by
   the node process at both moments), R's CPU before the first connection (loading the
   config), the node process's own CPU;
4. ``--quiet`` seconds, then the idle window (``--window``, 80 s: one keepalive interval at
   the negotiated hold time of 240 s, so that every session's KEEPALIVE falls in it once each
   way; a shorter window can hold none): R's CPU percent, RSS (VmRSS) at the end and peak
   (VmHWM, initial load included);
5. checks: every node holds exactly the other nodes' blocks (and R's), one path each, its
   own block never reflected back; every route's attributes exactly as expected: ORIGIN IGP,
   an empty AS_PATH, NEXT_HOP the owner's address (unchanged by the reflector),
   LOCAL_PREF 2147482623, ORIGINATOR_ID the owner's router ID, CLUSTER_LIST [10.0.0.1] (R's cluster ID,
   not its router ID), nothing else; no NOTIFICATION, no session lost, no UPDATE while idle;
   R's own count of Established ``Node_*`` protocols; and R's kernel table: with
   ``--pool noencap`` every block ``via 10.191.0.2 dev crr0 proto bird metric 1024`` and R's
   own as a blackhole, with ``--pool ipip`` none (Felix programs IPIP cluster routes).

``--log-severity info`` (default, Calico's default ``logSeverityScreen: Info``) writes
``debug { states, routes, filters, events }`` into the BGP template, as confd does: BIRD then
traces every route it imports and exports (~N² lines); ``none`` leaves the debug lines out
(``logSeverityScreen`` Warning or above). bgpd reads those lines and does not trace routes.

``--router-ids hash`` gives the nodes BGP identifiers that are not their addresses (as
``CALICO_ROUTER_ID=hash`` does); by default a node's identifier is its IP, as in Calico.

Run (root; BIRD 1.6.8 from tools/bird16.sh; about 2 minutes per implementation and repeat)::

    .venv/bin/python bench/calico_rr.py                        # 1,000 nodes, bgpd then BIRD
    .venv/bin/python bench/calico_rr.py --repeat 3 --markdown
    .venv/bin/python bench/calico_rr.py --impl bgpd --profile /tmp/crprof   # py-spy settle
    .venv/bin/python bench/calico_rr.py --write-config DIR      # only the confd files

Every process is stopped by the PID started here (SIGTERM, then SIGKILL) and every namespace
deleted, also on error, timeout, Ctrl-C or SIGTERM. Results go to
``bench/results/calico_rr-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ipaddress
import multiprocessing as mp
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import farm  # noqa: E402  (the nodes' selector loop: sockets, framing, keepalives)
import rr  # noqa: E402  (/proc readers, py-spy wrapper, profile summary)
from farm import (  # noqa: E402
    ESTABLISHED,
    KEEPALIVE_MSG,
    OPENCONFIRM,
    OPENSENT,
    STATE_NAMES,
)

from bgpd.wire import AttrSet, Context, Open, decode_open, pack_announce  # noqa: E402
from bgpd.wire.capabilities import (  # noqa: E402
    AddPath,
    FourOctetAS,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
)
from bgpd.wire.constants import IPV4_UNICAST  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASN = 64512
R_ADDR = "10.191.0.1"  # the reflector's node IP (router id, source address)
GW_ADDR = "10.191.0.2"  # the nodes' end of the link
LINK_PLEN = 24
NODES_NET = "10.192.0.0/16"
CLUSTER_ID = "10.0.0.1"
POOL = "192.168.0.0/16"
POOL_BASE = int(ipaddress.IPv4Address("192.168.0.0"))
BLOCK_LEN = 26
BLOCK_SIZE = 1 << (32 - BLOCK_LEN)
MAX_NODES = 1020  # blocks 0..1019; R's own blocks are taken from the top of the pool
PER_OCTET = 250
LOCAL_PREF = 2147483647 - 1024  # a Calico node's own block (krt_metric 1024)
KRT_METRIC = 1024
HOLD_TIME = 240  # BIRD's default; Calico does not set it
EOR_MSG = b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x00\x00\x00"
IMPLS = ("bgpd", "bird")
BASELINE = "bird"
SAMPLE = 5
TRICKLE = 16384  # octets per wake-up of the node process below which R is "trickling"
TRICKLE_SLEEP = 0.002


def node_address(i: int) -> str:
    return f"10.192.{1 + i // PER_OCTET}.{1 + i % PER_OCTET}"


def node_router_id(i: int, mode: str = "address") -> str:
    """Node i's BGP identifier: its address, as Calico sets it by default, or (``hash``) one
    derived from its name, as with ``CALICO_ROUTER_ID=hash``."""
    if mode == "address":
        return node_address(i)
    h = zlib.crc32(f"node-{i}".encode()) & 0x00FFFFFF
    return str(ipaddress.IPv4Address((100 << 24) | h))  # 100.0.0.0/8: never a node address


def block_int(i: int) -> int:
    return POOL_BASE + i * BLOCK_SIZE


def block_key(i: int) -> bytes:
    """Node i's block as an NLRI (length octet and four address octets)."""
    return bytes((BLOCK_LEN,)) + block_int(i).to_bytes(4, "big")


def rr_block(j: int) -> int:
    """R's j-th own block, from the top of the pool down (192.168.255.192/26 first)."""
    return 1023 - j


def cidr(i: int) -> str:
    return f"{ipaddress.IPv4Address(block_int(i))}/{BLOCK_LEN}"


def key_str(key: bytes) -> str:
    return f"{'.'.join(str(x) for x in key[1:])}/{key[0]}"


# --- the confd files ----------------------------------------------------------------------

# BGPConfiguration.logSeverityScreen as confd maps it: Info (the default) traces routes,
# Debug everything, Warning and above writes no debug line.
DEBUG_LINES = {
    "info": ("  debug { states };\n", "  debug { states, routes, filters, events };\n"),
    "debug": ("  debug all;\n", "  debug all;\n"),
    "none": ("", ""),
}


def bird_cfg(
    peers: list[str],
    *,
    router_id: str = R_ADDR,
    asn: int = ASN,
    cluster_id: str = CLUSTER_ID,
    log: str = "info",
) -> str:
    """``bird.cfg`` of a route reflector whose iBGP peers (same AS, no cluster ID of their
    own) are all route-reflection clients, as confd writes it (bird.cfg.template and
    bgp_processor.go; the golden output of explicit_peering/route_reflector)."""
    small, bgp = DEBUG_LINES[log]
    out = [
        "function apply_communities ()\n{\n}\n",
        "template kernel kernel_template {\n"
        "  learn;             # Learn all alien routes from the kernel\n"
        "  persist;           # Don't remove routes on bird shutdown\n"
        "  scan time 2;       # Scan kernel routing table every 2 seconds\n"
        "  import all;\n"
        "}\n",
        "template direct direct_template {\n"
        + small
        + '  interface -"cali*", -"kube-ipvs*", "*"; # Exclude cali* and kube-ipvs* but\n'
        "                                          # include everything else.  In\n"
        "                                          # IPVS-mode, kube-proxy creates a\n"
        "                                          # kube-ipvs0 interface. We exclude\n"
        "                                          # kube-ipvs0 because this interface\n"
        "                                          # gets an address for every in use\n"
        "                                          # cluster IP. We use static routes\n"
        "                                          # for when we legitimately want to\n"
        "                                          # export cluster IPs.\n"
        "}\n",
        "# Generated by confd\n",
        'include "bird_aggr.cfg";\n',
        'include "bird_ipam.cfg";\n',
        f"router id {router_id};\n",
        "# Configure synchronization between routing tables and kernel.\n"
        "protocol kernel from kernel_template {\n"
        "  export filter calico_kernel_programming; # Default is export none\n"
        "  graceful restart;  # Turn on graceful restart to reduce potential flaps in\n"
        "                     # routes when reloading BIRD configuration.  With a full\n"
        "                     # automatic mesh, there is no way to prevent BGP from\n"
        "                     # flapping since multiple nodes update their BGP\n"
        "                     # configuration at the same time, GR is not guaranteed to\n"
        "                     # work correctly in this scenario.\n"
        "  merge paths on;    # Allow export multipath routes (ECMP)\n"
        "}\n",
        "# Watch interface up/down events.\n"
        "protocol device {\n" + small + "  scan time 2;    # Scan interfaces every 2 seconds\n"
        "}\n",
        "protocol direct from direct_template {\n}\n",
        "# Template for all BGP clients\n"
        "template bgp bgp_template {\n" + bgp + '  description "Connection to BGP peer";\n'
        f"  local as {asn};\n"
        "  gateway recursive; # This should be the default, but just in case.\n"
        "  add paths on;\n"
        "  graceful restart;  # See comment in kernel section about graceful restart.\n"
        "  connect delay time 2;\n"
        "  connect retry time 5;\n"
        "  error wait time 5,30;\n"
        "}\n",
        "# -------------- BGP Filters ------------------\n",
        "# No v4 BGPFilters configured\n",
        "# BGP Protocol Configurations\n",
    ]
    for ip in peers:
        out.append(
            f"protocol bgp Node_{ip.replace('.', '_')} from bgp_template {{\n"
            f"  neighbor {ip} as {asn};\n"
            f"  source address {router_id};  # The local address we use for the TCP connection\n"
            "  ttl security off;\n"
            "  multihop;\n"
            "  import filter {\n"
            "    if (defined(bgp_local_pref)&&(bgp_local_pref > 2147482623)) then\n"
            "      preference = 200;\n"
            "    accept;\n"
            "  };\n"
            "  export filter {\n"
            "    if (defined(source) && source = RTS_BGP && defined(bgp_local_pref)) then {\n"
            "      krt_metric = 2147483647 - bgp_local_pref;\n"
            "    } else {\n"
            "      if (!defined(krt_metric)) then { krt_metric = 1024; }\n"
            "      bgp_local_pref = 2147483647 - krt_metric;\n"
            "    }\n"
            "    calico_export_to_bgp_peers(true);\n"
            "    reject;\n"
            "  };  # Only want to export routes for workloads.\n"
            "  rr client;\n"
            f"  rr cluster id {cluster_id};\n"
            "}\n"
        )
    return "".join(out)


def bird_aggr_cfg(blocks: list[str]) -> str:
    """``bird_aggr.cfg``: R's own IPAM blocks (confirmed affinities) as blackholes, and
    ``calico_aggr`` exporting each block and nothing beneath it."""
    out = ["# Generated by confd\n", "template static static_template {\n"]
    if blocks:
        out.append("   # IP blocks for this host.\n")
        out += [f"   route {b} blackhole;\n" for b in blocks]
        out.append("}\n")
        out.append("protocol static from static_template {\n}\n")
    else:
        out.append("   # No IP blocks or static routes for this host.\n")
        out.append("}\n")
    out.append("# Aggregation of routes on this host; export the block, nothing beneath it.\n")
    out.append("function calico_aggr ()\n{\n")
    for b in blocks:
        out += [
            f"      # Block {b} is confirmed\n",
            f"      if ( net = {b} ) then {{ accept; }}\n",
            f"      if ( net ~ {b} && krt_metric < 1024 ) then {{ accept; }}\n",
            f"      if ( net ~ {b} ) then {{ reject; }}\n",
        ]
    out.append("}\n")
    return "".join(out)


def bird_ipam_cfg(pools: list[tuple[str, str]]) -> str:
    """``bird_ipam.cfg`` for IP pools ``(cidr, mode)``: every pool is exported to BGP peers;
    the kernel protocol installs ``noencap`` pools and leaves ``ipip`` (and VXLAN) pools to
    Felix (the "Cluster routes are handled by Felix" line of current confd)."""
    out = [
        "# Generated by confd\n",
        "function reject_local_routes () {\n"
        "  # Don't export local routes learned via BPF as they should never leave the node.\n"
        "  if (defined(ifname)) then {\n"
        '     if (ifname ~ "bpf*.cali") then {\n'
        "        reject;\n"
        "     }\n"
        "  }\n"
        "}\n",
        "function calico_export_to_bgp_peers(bool internal_peer) {\n"
        "  # filter code terminates when it calls `accept;` or `reject;`,\n"
        "  if (internal_peer) then {\n"
        "    if (defined(ifname)) then {\n"
        '      if ((ifname ~ "*.cali") || (ifname ~ "*.calico") || (ifname ~ "tunl0")) then {\n'
        "        reject;\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "  reject_local_routes();\n"
        "  apply_communities();\n"
        "  calico_aggr();\n",
    ]
    out += [f"  if (net ~ {c}) then {{ accept; }}\n" for c, _ in pools]
    out.append("}\n")
    out.append(
        "filter calico_kernel_programming {\n"
        "  if (defined(source) && (source = RTS_BGP) && !defined(krt_metric)) then {\n"
        "      krt_metric = 1024;\n"
        "      if (defined(bgp_local_pref)) then {\n"
        "          krt_metric = 2147483647 - bgp_local_pref;\n"
        "      }\n"
        "      if (krt_metric < 1024) then {\n"
        "          preference = 200;\n"
        "      }\n"
        "  }\n"
    )
    for c, mode in pools:
        if mode == "noencap":
            out.append(f"  if (net ~ {c}) then {{ accept; }}\n")
        else:
            out.append(
                f"  if (net ~ {c}) then {{ reject; }} # Cluster routes are handled by Felix.\n"
            )
    out.append("  accept;\n}\n")
    return "".join(out)


def confd_files(n: int, pool: str = "noencap", log: str = "info", rr_blocks: int = 1) -> dict:
    """The three files of R for N nodes: ``{name: text}``."""
    return {
        "bird.cfg": bird_cfg([node_address(i) for i in range(n)], log=log),
        "bird_aggr.cfg": bird_aggr_cfg([cidr(rr_block(j)) for j in range(rr_blocks)]),
        "bird_ipam.cfg": bird_ipam_cfg([(POOL, pool)]),
    }


def write_confd(directory: Path, n: int, pool: str, log: str, rr_blocks: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in confd_files(n, pool, log, rr_blocks).items():
        (directory / name).write_text(text)
    return directory / "bird.cfg"


# --- expected routes ------------------------------------------------------------------------


def parse_attrs(block: bytes) -> dict[int, bytes]:
    """Path attributes by type code (values as on the wire); raises ValueError if malformed."""
    out: dict[int, bytes] = {}
    i, end = 0, len(block)
    while i < end:
        if end - i < 3:
            raise ValueError("truncated attribute header")
        flags, t = block[i], block[i + 1]
        if flags & 0x10:
            ln = int.from_bytes(block[i + 2 : i + 4], "big")
            i += 4
        else:
            ln = block[i + 2]
            i += 3
        if i + ln > end:
            raise ValueError(f"attribute {t} overruns the block")
        if t in out:
            raise ValueError(f"attribute {t} twice")
        out[t] = block[i : i + ln]
        i += ln
    return out


ATTR_NAMES = {
    1: "ORIGIN",
    2: "AS_PATH",
    3: "NEXT_HOP",
    4: "MED",
    5: "LOCAL_PREF",
    8: "COMMUNITIES",
    9: "ORIGINATOR_ID",
    10: "CLUSTER_LIST",
    16: "EXT_COMMUNITIES",
    32: "LARGE_COMMUNITIES",
}


def expected_attrs(owner: str | None, router_id: str | None = None) -> dict[int, bytes]:
    """The attributes a node must receive for a block of node ``owner`` (its address; its
    BGP identifier ``router_id``, the same by default), or of R itself (None): reflected
    unchanged but for ORIGINATOR_ID and CLUSTER_LIST."""
    base = {1: b"\x00", 2: b"", 5: LOCAL_PREF.to_bytes(4, "big")}
    if owner is None:
        return {**base, 3: socket.inet_aton(R_ADDR)}
    rid = socket.inet_aton(router_id or owner)
    return {**base, 3: socket.inet_aton(owner), 9: rid, 10: socket.inet_aton(CLUSTER_ID)}


def describe(attrs: dict[int, bytes]) -> str:
    parts = []
    for t, v in sorted(attrs.items()):
        name = ATTR_NAMES.get(t, str(t))
        if t in (3, 9) and len(v) == 4:
            parts.append(f"{name}={socket.inet_ntoa(v)}")
        elif t == 10:
            ids = [socket.inet_ntoa(v[k : k + 4]) for k in range(0, len(v), 4)]
            parts.append(f"{name}={ids}")
        elif t in (1, 4, 5):
            parts.append(f"{name}={int.from_bytes(v, 'big')}")
        else:
            parts.append(f"{name}={v.hex()}")
    return " ".join(parts)


# --- the node process -----------------------------------------------------------------------

CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    """setns(2) this (single-threaded) process into the network namespace ``name``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, f"setns {name}: {os.strerror(e)}")
    finally:
        os.close(fd)


class Node(farm.Speaker):
    """One Calico node's BGP speaker: its session with R and what it holds."""

    __slots__ = (
        "addr",
        "own",
        "open_msg",
        "upd_plain",
        "upd_addpath",
        "upd",
        "addpath_rx",
        "held",
        "announced",
        "withdrawn",
        "updates",
        "own_seen",
        "eor",
        "r_caps",
    )

    def __init__(self, i: int, rid_mode: str = "address") -> None:
        super().__init__(i, HOLD_TIME / 3)
        self.addr = node_address(i)
        self.own = block_key(i)
        caps = (
            Multiprotocol(1, 1),
            RouteRefresh(),
            GracefulRestart(restart_time=120, families=((1, 1, True),)),
            FourOctetAS(ASN),
            AddPath(((1, 1, 3),)),
        )
        self.open_msg = Open(
            asn=ASN, hold_time=HOLD_TIME, router_id=node_router_id(i, rid_mode), capabilities=caps
        ).encode()
        attrs = AttrSet(
            origin=0, as_path=(), next_hop=socket.inet_aton(self.addr), local_pref=LOCAL_PREF
        )
        ctx = Context(as4=True, ibgp=True)
        (self.upd_plain,) = pack_announce(IPV4_UNICAST, attrs, [self.own], ctx)
        ctx = Context(as4=True, ibgp=True, add_path_tx=frozenset({IPV4_UNICAST}))
        (self.upd_addpath,) = pack_announce(IPV4_UNICAST, attrs, [(1, self.own)], ctx)
        self.upd = self.upd_plain
        self.addpath_rx = False
        self.held: dict[bytes, bytes] = {}  # NLRI (with its path id under ADD-PATH) -> attrs
        self.announced = 0
        self.withdrawn = 0
        self.updates = 0
        self.own_seen = 0
        self.eor = 0
        self.r_caps: list[str] = []


class Fleet(farm.Farm):
    """Every node, served by one selector loop in the nodes' namespace; talks to the parent
    over ``conn``."""

    def __init__(self, conn, n: int, expected_extra: int, rid_mode: str = "address") -> None:
        super().__init__()
        self.conn = conn
        self.n = n
        self.rid_mode = rid_mode
        self.want = n - 1 + expected_extra  # routes each node must hold
        self.nodes = [Node(i, rid_mode) for i in range(n)]
        self.speakers = self.nodes
        self.by_addr = {nd.addr: nd for nd in self.nodes}
        self.attrs_pool: dict[bytes, bytes] = {}  # one object per distinct attribute block
        self.events: list[dict] = []  # drops, refused and second connections
        self.connections = 0
        self.r_pid: int | None = None
        self.t_first: float | None = None
        self.r_cpu_first: float | None = None
        self.t_all_established: float | None = None
        self.t_settled: float | None = None
        self.r_router_id: str | None = None
        self.r_hold: set[int] = set()
        self.listener: socket.socket | None = None

    def r_cpu(self) -> float | None:
        if self.r_pid is None:
            return None
        try:
            return rr.proc_cpu(self.r_pid)
        except OSError:
            return None

    def event(self, nd: Node | None, now: float, what: str) -> None:
        self.events.append(
            {
                "node": nd.i if nd is not None else None,
                "t": now - (self.t_first or now),
                "state": STATE_NAMES[nd.state] if nd is not None else "",
                "what": what,
            }
        )
        if self.window is not None:
            self.window["drops"] += 1

    # --- sockets

    def listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", 179))
        s.listen(4096)
        s.setblocking(False)
        self.listener = s
        self.sel.register(s, selectors.EVENT_READ, None)

    def accept(self, now: float) -> None:
        while True:
            try:
                s, peer = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as e:
                self.event(None, now, f"accept: {e}")
                return
            if self.t_first is None:
                self.t_first = now
                self.r_cpu_first = self.r_cpu()
            self.connections += 1
            local = s.getsockname()[0]
            nd = self.by_addr.get(local)
            if nd is None or peer[0] != R_ADDR:
                self.event(None, now, f"unexpected connection {peer[0]} -> {local}")
                s.close()
                continue
            if nd.sock is not None:  # R gave up on the old one: follow it
                self.drop(nd, now, "a second connection from R")
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nd.sock = s
            nd.state = OPENSENT
            nd.last_rx = now
            self.sel.register(s, selectors.EVENT_READ, nd)
            self.send(nd, nd.open_msg, now)

    def writable(self, nd: Node, now: float) -> None:
        self.flush(nd, now)

    def drop(self, nd: Node, now: float, reason: str) -> None:
        self.event(nd, now, reason)
        self.release(nd)
        nd.held = {}

    def on_open(self, nd: Node, body: bytes, now: float) -> None:
        try:
            o = decode_open(body)
        except Exception as e:  # noqa: BLE001 - a bad OPEN ends the session
            self.drop(nd, now, f"bad OPEN: {e}")
            return
        send = recv = False
        names = []
        for c in o.capabilities:
            names.append(type(c).__name__)
            if isinstance(c, AddPath):
                for afi, safi, sr in c.entries:
                    if (afi, safi) == (1, 1):
                        send = bool(sr & 2)
                        recv = bool(sr & 1)
        nd.r_caps = names
        nd.addpath_rx = send  # we advertised receive: R's NLRI carry path ids if it sends
        hold = min(HOLD_TIME, o.hold_time)
        self.r_hold.add(o.hold_time)
        nd.ka_every = hold / 3 if hold else 0
        if self.r_router_id is None:
            self.r_router_id = o.router_id
        nd.state = OPENCONFIRM
        nd.upd = nd.upd_addpath if recv else nd.upd_plain
        self.send(nd, KEEPALIVE_MSG, now)

    def on_established(self, nd: Node, now: float) -> None:
        nd.state = ESTABLISHED
        nd.sessions += 1
        self.established += 1
        if self.established == self.n and self.t_all_established is None:
            self.t_all_established = now
        self.send(nd, nd.upd + EOR_MSG, now)  # with a path id if R receives them
        self.schedule_keepalives(nd, now)

    def on_update(self, nd: Node, buf: bytearray, s: int, e: int) -> None:
        nd.updates += 1
        if self.window is not None:
            self.window["updates"] += 1
        off = 4 if nd.addpath_rx else 0
        wl = (buf[s] << 8) | buf[s + 1]
        p = s + 2
        held = nd.held
        if wl:
            stop = p + wl
            while p < stop:
                size = off + 1 + ((buf[p + off] + 7) >> 3)
                held.pop(bytes(buf[p : p + size]), None)
                nd.withdrawn += 1
                p += size
        al = (buf[p] << 8) | buf[p + 1]
        a0 = p + 2
        p = a0 + al
        if p == e:
            if not wl and not al:
                nd.eor += 1
            return
        attrs = bytes(buf[a0:p])
        attrs = self.attrs_pool.setdefault(attrs, attrs)
        own = nd.own
        while p < e:
            size = off + 1 + ((buf[p + off] + 7) >> 3)
            key = bytes(buf[p : p + size])
            if key[off:] == own:
                nd.own_seen += 1
            held[key] = attrs
            nd.announced += 1
            p += size
        full = len(held) >= self.want
        if full != nd.full:
            nd.full = full
            self.full += 1 if full else -1

    # --- timers

    # --- reports

    def progress(self, now: float) -> dict:
        return {
            "t": now - (self.t_first or now),
            "r_cpu": self.r_cpu(),
            "routes_held": sum(len(nd.held) for nd in self.nodes),
            "connections": self.connections,
            "established": self.established,
            "full": self.full,
            "events": len(self.events),
            "messages_in": self.messages_in,
        }

    def settle_report(self, now: float, r_cpu: float | None, r_hwm: int, r_rss: int) -> dict:
        t0 = self.t_first
        return {
            "settle_s": now - t0,
            "all_established_s": self.t_all_established - t0,
            "r_cpu_at_first_connection_s": self.r_cpu_first,
            "r_cpu_s": (r_cpu - self.r_cpu_first)
            if r_cpu is not None and self.r_cpu_first is not None
            else None,
            "r_peak_rss_bytes": r_hwm,
            "r_rss_bytes": r_rss,
            "connections": self.connections,
            "events": list(self.events[:50]),
            "messages_in": self.messages_in,
            "bytes_in": self.bytes_in,
            "nodes_cpu_s": time.process_time(),
            "r_router_id": self.r_router_id,
            "r_hold_time": sorted(self.r_hold),
            "r_capabilities": self.nodes[0].r_caps,
            "addpath_rx": self.nodes[0].addpath_rx,
        }

    def window_start(self, now: float) -> None:
        self.open_window(now)

    def window_end(self, now: float) -> dict:
        w = self.window or {}
        self.window = None
        gaps = self.silences(now)
        return {
            "keepalives_received": w.get("ka_rx", 0),
            "keepalives_sent": w.get("ka_tx", 0),
            "updates_received": w.get("updates", 0),
            "drops": w.get("drops", 0),
            "established_at_end": self.established,
            "full_at_end": self.full,
            "max_silence_s": gaps[-1] if gaps else None,
        }

    def final_check(self, rr_blocks: int) -> dict:
        """Every node holds exactly the others' blocks and R's, one path each, with exactly
        the attributes expected of a reflected route."""
        n = self.n
        owner: dict[bytes, int | None] = {block_key(i): i for i in range(n)}
        for j in range(rr_blocks):
            owner[block_key(rr_block(j))] = None
        expected = {
            k: expected_attrs(None)
            if i is None
            else expected_attrs(node_address(i), node_router_id(i, self.rid_mode))
            for k, i in owner.items()
        }
        parsed: dict[bytes, dict | str] = {}
        for a in self.attrs_pool:
            try:
                parsed[a] = parse_attrs(a)
            except ValueError as e:
                parsed[a] = f"malformed: {e}"
        wrong: list[dict] = []
        attr_problems: list[str] = []
        bad_routes = 0
        own_back = multi_path = checked = 0
        announced = withdrawn = eor = 0
        for nd in self.nodes:
            announced += nd.announced
            withdrawn += nd.withdrawn
            eor += nd.eor
            own_back += nd.own_seen
            off = 4 if nd.addpath_rx else 0
            prefixes: dict[bytes, bytes] = {}
            for key, a in nd.held.items():
                pfx = key[off:]
                if pfx in prefixes:
                    multi_path += 1
                prefixes[pfx] = a
            want = set(owner)
            want.discard(nd.own)
            missing = want - prefixes.keys()
            extra = prefixes.keys() - want
            if missing or extra or len(nd.held) != len(want):
                wrong.append(
                    {
                        "node": nd.i,
                        "held": len(nd.held),
                        "want": len(want),
                        "missing": [key_str(k) for k in list(missing)[:3]],
                        "extra": [key_str(k) for k in list(extra)[:3]],
                        "state": STATE_NAMES[nd.state],
                    }
                )
            for pfx, a in prefixes.items():
                exp = expected.get(pfx)
                if exp is None:
                    continue
                checked += 1
                got = parsed[a]
                if got != exp:
                    bad_routes += 1
                    if len(attr_problems) < 10:
                        shown = got if isinstance(got, str) else describe(got)
                        attr_problems.append(
                            f"node {nd.i} ({nd.addr}), {key_str(pfx)}: got {shown}; "
                            f"want {describe(exp)}"
                        )
        samples = []
        for a in list(self.attrs_pool)[:SAMPLE]:
            got = parsed[a]
            samples.append(got if isinstance(got, str) else describe(got))
        ok = not wrong and not own_back and not multi_path and not bad_routes
        return {
            "ok": ok,
            "nodes_wrong": len(wrong),
            "wrong_sample": wrong[:5],
            "routes_checked": checked,
            "routes_with_wrong_attributes": bad_routes,
            "attribute_problems": attr_problems,
            "own_block_reflected": own_back,
            "prefixes_with_several_paths": multi_path,
            "announced_total": announced,
            "duplicates": announced - own_back - sum(len(nd.held) for nd in self.nodes),
            "withdrawn_total": withdrawn,
            "end_of_rib_received": eor,
            "expected_total": n * (n - 1 + rr_blocks),
            "distinct_attribute_sets": len(self.attrs_pool),
            "attribute_samples": samples,
            "sessions_per_node_max": max(nd.sessions for nd in self.nodes),
            "established": self.established,
            "events": len(self.events),
            "event_sample": self.events[:10],
        }

    # --- the loop

    def command(self, now: float, rr_blocks: int) -> bool:
        try:
            cmd = self.conn.recv()
        except EOFError:
            return False
        if isinstance(cmd, tuple) and cmd[0] == "r_pid":
            self.r_pid = cmd[1]
        elif cmd == "window_start":
            self.window_start(now)
            self.conn.send(("window_started", now))
        elif cmd == "window_end":
            self.conn.send(("window", self.window_end(now)))
        elif cmd == "finish":
            self.conn.send(("result", self.final_check(rr_blocks)))
            return False
        return True

    def run(self, rr_blocks: int) -> None:
        self.sel.register(self.conn, selectors.EVENT_READ, "conn")
        self.listen()
        self.conn.send(("listening", time.monotonic()))
        next_tick = time.monotonic() + 1.0
        while True:
            now = time.monotonic()
            timeout = next_tick - now
            if self.ka:
                timeout = min(timeout, self.ka[0][0] - now)
            bytes_before = self.bytes_in
            for key, events in self.sel.select(max(0.0, timeout)):
                nd = key.data
                now = time.monotonic()
                if nd is None:
                    self.accept(now)
                    continue
                if nd == "conn":
                    if not self.command(now, rr_blocks):
                        return
                    continue
                if key.fileobj is not nd.sock:
                    continue  # dropped earlier in this batch
                if events & selectors.EVENT_WRITE:
                    self.writable(nd, now)
                if events & selectors.EVENT_READ and nd.sock is key.fileobj:
                    self.readable(nd, now)
            if 0 < self.bytes_in - bytes_before < TRICKLE:
                # R is trickling: let its messages pile up a little (fewer, fuller reads)
                time.sleep(TRICKLE_SLEEP)
            now = time.monotonic()
            self.keepalives(now)
            if self.t_settled is None and self.established == self.n and self.full == self.n:
                self.t_settled = now
                cpu = self.r_cpu()
                hwm = rss = 0
                with contextlib.suppress(OSError):
                    hwm = rr.proc_status(self.r_pid, "VmHWM")
                    rss = rr.proc_status(self.r_pid, "VmRSS")
                self.conn.send(("settled", self.settle_report(now, cpu, hwm, rss)))
            if now >= next_tick:
                next_tick = now + 1.0
                if self.window is None and self.t_first is not None:
                    self.conn.send(("progress", self.progress(now)))

    def close(self) -> None:
        for nd in self.nodes:
            if nd.sock is not None:
                nd.sock.close()
                nd.sock = None
        if self.listener is not None:
            self.listener.close()


def fleet_main(conn, netns: str, n: int, rr_blocks: int, rid_mode: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    fleet = None
    try:
        enter_netns(netns)
        fleet = Fleet(conn, n, rr_blocks, rid_mode)
        fleet.run(rr_blocks)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        import traceback

        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    finally:
        if fleet is not None:
            fleet.close()


# --- namespaces -----------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


class Namespaces:
    """R's namespace and the nodes', joined by a veth pair; deleted by ``delete``."""

    def __init__(self, tag: str) -> None:
        self.r = f"{tag}-r"
        self.c = f"{tag}-c"
        self.created: list[str] = []

    def create(self) -> None:
        for ns in (self.r, self.c):
            _ip("netns", "add", ns)
            self.created.append(ns)
        _ip("link", "add", "crr0", "netns", self.r, "type", "veth", "peer", "name", "crc0",
            "netns", self.c)  # fmt: skip
        for ns, dev, addr in ((self.r, "crr0", R_ADDR), (self.c, "crc0", GW_ADDR)):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{addr}/{LINK_PLEN}", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
        # R reaches the nodes through one gateway (BIRD learns this route: `learn`).
        _ip("-n", self.r, "route", "add", NODES_NET, "via", GW_ADDR, "proto", "boot")
        # Every node address is local in the nodes' namespace (AnyIP).
        _ip("-n", self.c, "route", "add", "local", NODES_NET, "dev", "lo")

    def delete(self) -> None:
        for ns in reversed(self.created):
            _ip("netns", "del", ns, check=False)
        self.created = []

    def kernel_routes(self) -> list[str]:
        r = _ip("-n", self.r, "-4", "route", "show", "table", "main", "proto", "bird")
        return [x.strip() for x in r.stdout.splitlines() if x.strip()]


def cleanup_stale() -> list[str]:
    """Namespaces ``cr-<pid>-...`` of runs of this script whose process is gone."""
    r = _ip("netns", "list", check=False)
    gone = []
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.fullmatch(r"cr-(\d+)-\d+-[rc]", name)
        if m and not Path(f"/proc/{m.group(1)}").exists():
            _ip("netns", "del", name, check=False)
            gone.append(name)
    return gone


# --- the reflectors -------------------------------------------------------------------------


def bird16_dir(explicit: str | None) -> Path | None:
    """The directory holding BIRD 1.6.8's ``bird`` and ``birdc`` (fetched by tools/bird16.sh
    when absent, as the tests' ``bird16`` fixture does)."""
    if explicit:
        p = Path(explicit)
        return p if (p / "bird").is_file() else None
    base = Path(os.environ.get("BGPD_BIRD16_DIR", ROOT / ".cache" / "bird16"))
    sbin = base / "usr" / "sbin"
    if not (sbin / "bird").is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(ROOT / "tools" / "bird16.sh"), str(base)], timeout=180,
                           capture_output=True)  # fmt: skip
    return sbin if (sbin / "bird").is_file() else None


class Reflector:
    """R in its namespace, started and stopped by its PID (``ip netns exec`` execs it)."""

    kind = ""

    def __init__(self, ns: str, workdir: Path, args) -> None:
        self.ns = ns
        self.workdir = workdir
        self.args = args
        self.proc: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self._log = open(self.workdir / f"{self.kind}.log", "wb")  # noqa: SIM115 - in stop
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *self.command()],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 15) -> str:
        p = self.workdir / f"{self.kind}.log"
        with contextlib.suppress(OSError):
            return "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_lines(self) -> int:
        with contextlib.suppress(OSError), open(self.workdir / f"{self.kind}.log", "rb") as f:
            return sum(1 for _ in f)
        return 0

    def view(self) -> dict:
        """What R says about its sessions."""
        return {}


class BirdReflector(Reflector):
    kind = "bird"

    def command(self) -> list[str]:
        w = self.workdir
        # calico-node's runit: bird -R -s /var/run/calico/bird.ctl -d -c .../bird.cfg
        # (-d: foreground, log to stderr; no -R: this is a fresh start, not a restart)
        return [str(self.args.bird16 / "bird"), "-d", "-c", str(w / "bird.cfg"),
                "-s", str(w / "bird.ctl"), "-P", str(w / "bird.pid")]  # fmt: skip

    def view(self) -> dict:
        try:
            r = subprocess.run(
                [
                    str(self.args.bird16 / "birdc"),
                    "-s",
                    str(self.workdir / "bird.ctl"),
                    "show",
                    "protocols",
                ],  # fmt: skip
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return {"error": str(e)}
        lines = [x for x in r.stdout.splitlines() if x.startswith("Node_")]
        return {
            "bgp_protocols": len(lines),
            "established": sum(1 for x in lines if "Established" in x),
        }


class BgpdReflector(Reflector):
    kind = "bgpd"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "bgpd.sock"

    def command(self) -> list[str]:
        py = str(rr.VENV_PYTHON) if rr.VENV_PYTHON.exists() else sys.executable
        return [py, "-m", "bgpd.cli.main", "run", "--bird", str(self.workdir / "bird.cfg"),
                "--control-socket", str(self.socket_path), "--log-level",
                self.args.bgpd_log_level]  # fmt: skip

    def view(self) -> dict:
        from bgpd.api.client import request

        try:
            s = request(str(self.socket_path), "show_summary", timeout=60)
        except Exception as e:  # noqa: BLE001 - a report only
            return {"error": f"{type(e).__name__}: {e}"}
        nb = s.get("neighbors", {})
        return {
            "bgp_protocols": nb.get("total"),
            "established": nb.get("established"),
            "routes": s.get("routes"),
        }


DAEMONS = {"bgpd": BgpdReflector, "bird": BirdReflector}


# --- one run --------------------------------------------------------------------------------


class RunError(Exception):
    pass


def _recv(conn, want: str, timeout: float, on_progress=None):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not conn.poll(left):
            raise RunError(f"the nodes did not send {want!r} within {timeout:.0f} s")
        msg = conn.recv()
        if msg[0] == want:
            return msg[1]
        if msg[0] == "error":
            raise RunError(f"nodes: {msg[1]}")
        if msg[0] == "progress" and on_progress is not None:
            on_progress(msg[1])


#: Phases of bgpd's work on a BIRD config, by a frame on the stack (the first that matches
#: wins, so the finer ones come first; one name may have several markers).
PHASES = (
    ("start: imports", "_call_with_frames_removed"),
    ("start: BirdSetup (parse, compile the filters, translate)", "BirdSetup.__init__"),
    ("start: Speaker.start (1,000 neighbors, their sessions)", "Speaker.start ("),
    ("export: the BIRD export filter (BirdExportContext)", "BirdExportContext.__call__"),
    ("export: Protocol.send_update (once per UPDATE per peer)", "Protocol.send_update ("),
    ("export: transport writes", "_SelectorSocketTransport.write"),
    ("export: the rest of Speaker._drain (buckets, packing)", "Speaker._drain ("),
    ("kernel: FIB writer, learning", "bgpd/kernel/"),
    ("import: the BIRD import filter (BirdImport)", "BirdImport.evaluate"),
    ("import: Loc-RIB", "LocRib.commit ("),
    ("import: Loc-RIB", "LocRib.announce ("),
    ("import: decode (framing, UPDATE, attrs)", "Protocol.receive_data ("),
    ("sessions: connect, accept, OPEN", "PeerSession._do_connect"),
    ("sessions: connect, accept, OPEN", "connect_accepted_socket"),
    ("sessions: connect, accept, OPEN", "sock_connect"),
    ("sessions: connect, accept, OPEN", "PeerSession._made"),
    ("session timers (PeerSession._on_timer)", "PeerSession._on_timer ("),
    ("socket reads (transport)", "_SelectorSocketTransport._read_ready"),
    ("logging", "structlog/"),
    ("garbage collection", "gc_collect"),
)


def _profile(path: Path, title: str) -> dict:
    saved = rr.PHASES
    rr.PHASES = PHASES
    try:
        s = rr.summarize_profile(path, top=25)
    finally:
        rr.PHASES = saved
    s["text"] = rr.print_profile(s, title)
    return {"file": str(path), **s}


_runs = [0]


def run_once(impl: str, args) -> dict:
    n = args.nodes
    _runs[0] += 1
    tag = f"cr-{os.getpid()}-{_runs[0]}"
    nss = Namespaces(tag)
    workdir = Path(tempfile.mkdtemp(prefix=f"cr-{impl}-"))
    daemon = DAEMONS[impl](nss.r, workdir, args)
    result: dict = {"impl": impl, "nodes": n, "namespaces": tag, "workdir": str(workdir)}
    result["ok"] = False
    ctx = mp.get_context("fork")
    parent_conn, child_conn = ctx.Pipe()
    fleet = None
    spy = None
    last = {"p": None, "next": 0.0}

    series: list[tuple[float, float | None, int, int]] = []

    def show(p: dict) -> None:
        last["p"] = p
        series.append((round(p["t"], 2), p["r_cpu"], p["messages_in"], p["routes_held"]))
        if time.monotonic() >= last["next"]:
            last["next"] = time.monotonic() + 10
            print(
                f"    {impl}: {p['t']:.0f} s, {p['connections']:,} connections, established "
                f"{p['established']:,}/{n:,}, complete {p['full']:,}, {p['events']} drops, "
                f"{p['messages_in']:,} messages in",
                file=sys.stderr,
                flush=True,
            )

    try:
        nss.create()
        write_confd(workdir, n, args.pool, args.log_severity, args.rr_blocks)
        fleet = ctx.Process(
            target=fleet_main,
            args=(child_conn, nss.c, n, args.rr_blocks, args.router_ids),
            daemon=True,
        )
        fleet.start()
        _recv(parent_conn, "listening", 60)
        daemon.start()
        pid = daemon.pid
        parent_conn.send(("r_pid", pid))
        t_launch = time.monotonic()
        profile_out = None
        if args.profile and impl == "bgpd":
            d = Path(args.profile)
            d.mkdir(parents=True, exist_ok=True)
            profile_out = d / f"calico_rr-settle-{impl}-{n}.txt"
            spy = rr.PySpy(pid, profile_out, args.profile_rate, lines=args.profile_lines)
        deadline = t_launch + args.settle_timeout
        settled = None
        while settled is None:
            if not daemon.alive():
                raise RunError(f"{impl} exited: {daemon.log_tail()}")
            if not fleet.is_alive():
                raise RunError("the node process exited")
            if time.monotonic() > deadline:
                result["view"] = daemon.view()
                raise RunError(
                    f"not settled within {args.settle_timeout:.0f} s (last progress {last['p']})"
                )
            with contextlib.suppress(RunError):
                settled = _recv(parent_conn, "settled", 1.0, show)
        if spy is not None:
            spy.stop()
            spy = None
            if profile_out.exists():
                result["profile_settle"] = _profile(
                    profile_out, f"{impl}, start and settle, {n:,} nodes (py-spy)"
                )
        result["settle"] = {"profiled": profile_out is not None, **settled}
        # once a second: (s since the first connection, R's CPU s, messages in, routes held)
        result["settle_series"] = series
        s = result["settle"]
        print(
            f"    {impl}: settled {s['settle_s']:.2f} s after the first connection (all "
            f"Established at {s['all_established_s']:.2f} s), R CPU {s['r_cpu_s']:.2f} s "
            f"(+{s['r_cpu_at_first_connection_s']:.2f} s before), nodes CPU "
            f"{s['nodes_cpu_s']:.2f} s, {len(s['events'])} drops",
            file=sys.stderr,
            flush=True,
        )

        # Quiet, then the idle window.
        time.sleep(args.quiet)
        if not daemon.alive():
            raise RunError(f"{impl} exited: {daemon.log_tail()}")
        parent_conn.send("window_start")
        _recv(parent_conn, "window_started", 10)
        t0 = time.monotonic()
        r0 = rr.proc_cpu(pid)
        c0 = rr.proc_cpu(fleet.pid)
        rss0 = rr.proc_status(pid, "VmRSS")
        per_second: list[float] = []
        prev_t, prev_r = t0, r0
        t_end = t0 + args.window
        k = 1
        while True:
            time.sleep(max(0.0, min(t0 + k, t_end) - time.monotonic()))
            if not daemon.alive():
                raise RunError(f"{impl} exited during the window: {daemon.log_tail()}")
            t, r = time.monotonic(), rr.proc_cpu(pid)
            if t > prev_t:
                per_second.append((r - prev_r) / (t - prev_t) * 100)
            prev_t, prev_r = t, r
            k += 1
            if t >= t_end:
                break
        c1 = rr.proc_cpu(fleet.pid)
        parent_conn.send("window_end")
        window = _recv(parent_conn, "window", 30)
        wall = prev_t - t0
        result["window"] = {
            **window,
            "wall_s": wall,
            "r_cpu_s": prev_r - r0,
            "r_cpu_percent": (prev_r - r0) / wall * 100,
            "r_cpu_percent_per_second": per_second,
            "r_rss_start_bytes": rss0,
            "r_rss_bytes": rr.proc_status(pid, "VmRSS"),
            "r_peak_rss_bytes": rr.proc_status(pid, "VmHWM"),
            "nodes_cpu_percent": (c1 - c0) / wall * 100,
        }
        w = result["window"]
        print(
            f"    {impl}: window {wall:.0f} s: R CPU {w['r_cpu_percent']:.2f} %, RSS "
            f"{w['r_rss_bytes'] / 2**20:.1f} MiB (peak {w['r_peak_rss_bytes'] / 2**20:.1f} "
            f"MiB), {w['updates_received']} UPDATEs, {w['drops']} drops",
            file=sys.stderr,
            flush=True,
        )
        if args.profile and args.profile_idle and impl == "bgpd":
            out = Path(args.profile) / f"calico_rr-idle-{impl}-{n}.txt"
            spy = rr.PySpy(pid, out, args.profile_rate)
            time.sleep(args.profile_duration)
            spy.stop()
            spy = None
            if out.exists():
                result["profile_idle"] = _profile(out, f"{impl}, idle, {n:,} nodes (py-spy)")

        result["view"] = daemon.view()
        result["kernel"] = kernel_check(nss, n, args)
        parent_conn.send("finish")
        result["check"] = _recv(parent_conn, "result", 300)
        result["log_lines"] = daemon.log_lines()
        v = result["view"]
        result["ok"] = (
            result["check"]["ok"]
            and result["kernel"]["ok"]
            and v.get("established") == n
            and w["drops"] == 0
            and w["established_at_end"] == n
            and w["updates_received"] == 0
        )
    except RunError as e:
        result["error"] = str(e)
    except Exception as e:  # noqa: BLE001 - reported in the results
        import traceback

        result["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    finally:
        if spy is not None:
            spy.stop()
        daemon.stop()
        if fleet is not None:
            with contextlib.suppress(OSError):
                parent_conn.send("finish")  # a no-op if it already finished
            fleet.join(10)
            if fleet.is_alive():
                fleet.terminate()  # SIGTERM to its PID
                fleet.join(5)
            if fleet.is_alive():
                fleet.kill()
                fleet.join(5)
        parent_conn.close()
        child_conn.close()
        if result.get("error") or not result["ok"]:
            result["log_tail"] = daemon.log_tail(30)
        nss.delete()
        if not args.keep_dirs and result["ok"]:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def kernel_check(nss: Namespaces, n: int, args) -> dict:
    """R's kernel table: the pool's routes R installed (proto bird), as expected."""
    lines = nss.kernel_routes()
    pool = ipaddress.ip_network(POOL)
    routes: dict[str, str] = {}
    for line in lines:
        dst = line.split()[0] if not line.startswith("blackhole") else line.split()[1]
        with contextlib.suppress(ValueError):
            if ipaddress.ip_network(dst).subnet_of(pool):
                routes[dst] = line
    want: dict[str, str] = {}
    if args.pool == "noencap":
        for i in range(n):
            want[cidr(i)] = f"{cidr(i)} via {GW_ADDR} dev crr0 metric {KRT_METRIC}"
        for j in range(args.rr_blocks):
            # a static route: the kernel filter sets no krt_metric, so none (0)
            want[cidr(rr_block(j))] = f"blackhole {cidr(rr_block(j))}"
    problems = []
    for dst, exp in want.items():
        got = routes.get(dst)
        if got is None:
            problems.append(f"missing {exp}")
        elif _norm_route(got) != _norm_route(exp):
            problems.append(f"{got!r}, want {exp!r}")
    for dst in routes.keys() - want.keys():
        problems.append(f"unexpected {routes[dst]!r}")
    return {
        "ok": not problems,
        "pool_routes": len(routes),
        "expected": len(want),
        "problems": len(problems),
        "problem_sample": problems[:5],
        "sample": list(routes.values())[:2],
    }


def _norm_route(line: str) -> str:
    words = line.split()
    # `ip route` prints "proto bird" (filtered on) only sometimes; compare the rest
    out = []
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("proto", "scope"):
            skip = True
            continue
        out.append(w)
    return " ".join(out)


# --- the report -----------------------------------------------------------------------------

HEADERS = [
    "implementation",
    "nodes",
    "ok/runs",
    "settle",
    "R CPU to settle",
    "start CPU",
    "idle CPU",
    "RSS",
    "peak RSS",
    "nodes CPU",
    "log lines",
    "× BIRD settle",
    "× BIRD CPU",
    "× BIRD idle",
    "× BIRD RSS",
    "× BIRD peak",
]


def _med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs: list[dict], impls: list[str]) -> list[dict]:
    rows = []
    for impl in impls:
        mine = [r for r in runs if r["impl"] == impl]
        good = [r for r in mine if "window" in r and "settle" in r]
        row = {"impl": impl, "runs": len(mine), "ok": sum(1 for r in mine if r["ok"])}
        if good:
            row.update(
                settle_s=_med([r["settle"]["settle_s"] for r in good]),
                settle_min_s=min(r["settle"]["settle_s"] for r in good),
                r_cpu_s=_med([r["settle"]["r_cpu_s"] for r in good]),
                start_cpu_s=_med([r["settle"]["r_cpu_at_first_connection_s"] for r in good]),
                idle_percent=_med([r["window"]["r_cpu_percent"] for r in good]),
                rss=_med([r["window"]["r_rss_bytes"] for r in good]),
                peak_rss=_med([r["window"]["r_peak_rss_bytes"] for r in good]),
                nodes_cpu_s=_med([r["settle"]["nodes_cpu_s"] for r in good]),
                log_lines=_med([r.get("log_lines") for r in good]),
                all_settle_s=[r["settle"]["settle_s"] for r in good],
                all_r_cpu_s=[r["settle"]["r_cpu_s"] for r in good],
                all_idle_percent=[r["window"]["r_cpu_percent"] for r in good],
            )
        rows.append(row)
    base = next((r for r in rows if r["impl"] == BASELINE and "settle_s" in r), None)
    for row in rows:
        if base is None or "settle_s" not in row:
            continue
        for key, name in (
            ("settle_s", "x_settle"),
            ("r_cpu_s", "x_cpu"),
            ("idle_percent", "x_idle"),
            ("rss", "x_rss"),
            ("peak_rss", "x_peak"),
        ):
            b = base.get(key)
            row[name] = row[key] / b if b else None
    return rows


def _mib(b: float | None) -> str:
    return f"{b / 2**20:.1f} MiB" if b else ""


def table_rows(summary: list[dict], n: int) -> list[list[str]]:
    out = []
    for s in summary:
        if "settle_s" not in s:
            out.append([s["impl"], common.fmt_int(n), f"{s['ok']}/{s['runs']}"] + [""] * 13)
            continue
        out.append(
            [
                s["impl"],
                common.fmt_int(n),
                f"{s['ok']}/{s['runs']}",
                common.fmt_seconds(s["settle_s"]),
                common.fmt_seconds(s["r_cpu_s"]),
                common.fmt_seconds(s["start_cpu_s"]),
                f"{s['idle_percent']:.2f} %",
                _mib(s["rss"]),
                _mib(s["peak_rss"]),
                common.fmt_seconds(s["nodes_cpu_s"]),
                common.fmt_int(s["log_lines"] or 0),
                common.fmt_ratio(s.get("x_settle")),
                common.fmt_ratio(s.get("x_cpu")),
                common.fmt_ratio(s.get("x_idle")),
                common.fmt_ratio(s.get("x_rss")),
                common.fmt_ratio(s.get("x_peak")),
            ]
        )
    return out


def _short(r: dict) -> str:
    if r.get("error"):
        return f"ERROR {r['error'].splitlines()[0] if r['error'] else ''}"
    c = r.get("check", {})
    s, w, k = r["settle"], r["window"], r["kernel"]
    problems = []
    if not c.get("ok"):
        problems.append(
            f"{c.get('nodes_wrong')} nodes with the wrong routes, "
            f"{c.get('routes_with_wrong_attributes')} routes with wrong attributes "
            f"({'; '.join(c.get('attribute_problems', [])[:2])}), own block back "
            f"{c.get('own_block_reflected')}, several paths {c.get('prefixes_with_several_paths')}"
        )
    if not k.get("ok"):
        problems.append(f"kernel: {k['problems']} problems {k['problem_sample'][:2]}")
    v = r.get("view", {})
    return (
        f"settled {s['settle_s']:.2f} s (all up {s['all_established_s']:.2f} s), R CPU "
        f"{s['r_cpu_s']:.2f} s; idle {w['r_cpu_percent']:.2f} %, RSS {_mib(w['r_rss_bytes'])} "
        f"(peak {_mib(w['r_peak_rss_bytes'])}); R says {v.get('established')} established; "
        f"kernel {k['pool_routes']} pool routes; {c.get('routes_checked', 0):,} routes checked, "
        f"{c.get('duplicates', 0):,} sent twice; "
        + ("check ok" if r["ok"] else "check FAILED: " + "; ".join(problems))
    )


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, checked; ``args.impls`` the list of reflectors and ``args.bird16``
    BIRD 1.6.8's directory (fetched when absent)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=1000, help=f"route-reflection clients (1000, "
                    f"at most {MAX_NODES})")  # fmt: skip
    ap.add_argument(
        "--impl", default="bgpd,bird", help=f"reflectors, in order ({', '.join(IMPLS)})"
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (1; medians)")
    ap.add_argument("--window", type=float, default=HOLD_TIME / 3,
                    help="idle seconds measured (80: one keepalive interval, so that every "
                    "session's KEEPALIVEs fall in it once each way)")  # fmt: skip
    ap.add_argument("--quiet", type=float, default=5, help="seconds between settled and window")
    ap.add_argument("--pool", choices=("noencap", "ipip"), default="noencap",
                    help="the IP pool's encapsulation: noencap (R's kernel protocol installs "
                    "every block) or ipip (Felix does: the kernel filter rejects them)")  # fmt: skip
    ap.add_argument("--log-severity", choices=tuple(DEBUG_LINES), default="info",
                    help="BGPConfiguration logSeverityScreen as confd maps it (info)")  # fmt: skip
    ap.add_argument("--rr-blocks", type=int, default=1, help="IPAM blocks of R itself (1)")
    ap.add_argument("--router-ids", choices=("address", "hash"), default="address",
                    help="the nodes' BGP identifiers: their addresses (Calico's default) or "
                    "derived from their names (CALICO_ROUTER_ID=hash)")  # fmt: skip
    ap.add_argument("--bird16", help="directory of BIRD 1.6.8's bird and birdc "
                    "(default: $BGPD_BIRD16_DIR or .cache/bird16, via tools/bird16.sh)")  # fmt: skip
    ap.add_argument("--bgpd-log-level", default="info")
    ap.add_argument("--settle-timeout", type=float, default=600)
    ap.add_argument("--profile", metavar="DIR", help="py-spy bgpd from its start to settled")
    ap.add_argument("--profile-idle", action="store_true", help="with --profile: also idle")
    ap.add_argument("--profile-duration", type=float, default=20)
    ap.add_argument("--profile-rate", type=int, default=250)
    ap.add_argument("--profile-lines", action="store_true", help="py-spy by line, not function")
    ap.add_argument("--write-config", metavar="DIR", help="write the confd files and exit")
    ap.add_argument("--keep-dirs", action="store_true")
    ap.add_argument("--no-json", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    if not 2 <= args.nodes <= MAX_NODES:
        ap.error(f"--nodes: 2..{MAX_NODES}")
    if not 0 <= args.rr_blocks <= 1024 - MAX_NODES:
        ap.error(f"--rr-blocks: 0..{1024 - MAX_NODES}")
    if args.write_config:
        return args
    args.impls = impls = [x.strip() for x in args.impl.split(",") if x.strip()]
    for impl in impls:
        if impl not in IMPLS:
            ap.error(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
    if "bird" in impls:
        args.bird16 = bird16_dir(args.bird16)
        if args.bird16 is None:
            ap.error("BIRD 1.6.8 not found: run tools/bird16.sh or pass --bird16 DIR")
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.write_config:
        path = write_confd(
            Path(args.write_config), args.nodes, args.pool, args.log_severity, args.rr_blocks
        )
        print(path)
        return 0
    impls = args.impls
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for name in cleanup_stale():
        print(f"removed the stale namespace {name}", file=sys.stderr)
    common.warn_if_busy()
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    loads = [os.getloadavg()]
    runs = []
    for k in range(args.repeat):
        for impl in impls:
            print(f"{impl} (run {k + 1}/{args.repeat}): {args.nodes:,} nodes",
                  file=sys.stderr, flush=True)  # fmt: skip
            r = run_once(impl, args)
            r["run"] = k
            r["loadavg_after"] = os.getloadavg()
            loads.append(r["loadavg_after"])
            runs.append(r)
            print(f"  {impl}: {_short(r)}", file=sys.stderr, flush=True)

    summary = summarize(runs, impls)
    print()
    print(
        f"Calico route reflector on confd's BIRD config: {args.nodes:,} nodes, each its own "
        f"/{BLOCK_LEN} and next hop; pool {args.pool}, log severity {args.log_severity}, "
        f"router ids {args.router_ids}, "
        f"{args.rr_blocks} block(s) of R's own; medians of {args.repeat}; {date}"
    )
    print("command: " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]))
    text = common.print_table(HEADERS, table_rows(summary, args.nodes))
    md = common.markdown_table(HEADERS, table_rows(summary, args.nodes))
    if args.markdown:
        print()
        print(md)
    for r in runs:
        if not r["ok"]:
            print(f"{r['impl']} run {r['run'] + 1}: {_short(r)}")
    for s in summary:
        if "all_settle_s" in s:
            print(
                f"{s['impl']}: settle "
                + ", ".join(f"{x:.2f}" for x in s["all_settle_s"])
                + " s; R CPU "
                + ", ".join(f"{x:.2f}" for x in s["all_r_cpu_s"])
                + " s; idle "
                + ", ".join(f"{x:.2f}" for x in s["all_idle_percent"])
                + " %"
            )
    print("load average (1 min) before, then after each run: "
          + ", ".join(f"{la[0]:.2f}" for la in loads))  # fmt: skip
    if not args.no_json:
        path = common.write_results(
            "calico_rr",
            {
                "params": {
                    "nodes": args.nodes,
                    "impl": impls,
                    "repeat": args.repeat,
                    "window_s": args.window,
                    "quiet_s": args.quiet,
                    "pool": args.pool,
                    "log_severity": args.log_severity,
                    "rr_blocks": args.rr_blocks,
                    "router_ids": args.router_ids,
                },
                "table": text,
                "markdown": md,
                "summary": summary,
                "loadavg": loads,
                "runs": runs,
                "git_paths": ["bgpd", "bench"],
            },
        )
        print(f"results: {os.path.relpath(path)}")
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

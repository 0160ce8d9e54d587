"""Real BIRD 1.6.8 as an oracle for the filter semantics, and bgpd's side of the comparison.

:class:`Oracle` runs ``bird -f -c CFG -s SOCK`` in a temp dir (optionally inside a network
namespace, as root), asks it ``show route [filter F] all`` with ``birdc``, and parses the
answer into :class:`ShownRoute` rows. :func:`view_of` turns a row of the unfiltered table
into the :class:`~bgpd.bird.RouteView` bgpd's filter sees, so both sides filter the very same
route; :func:`shown_of` renders bgpd's :class:`~bgpd.bird.Verdict` the way ``show route all``
prints a route, so the comparison is textual and exact.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bgpd.bird import RouteView
from bgpd.wire.attrs import AttrSet, intern
from bgpd.wire.constants import AS_SEQUENCE, AS_SET

_HEAD = re.compile(r"^(\S*)\s+(.*?) \[(\S+) [^\]]*\]( \*| !)? \((\d+)(?:/[^)]*)?\)")


@dataclass
class ShownRoute:
    """One route of ``show route all``: what BIRD prints about it."""

    prefix: str
    via: str  # "blackhole", "unreachable", "dev X", "via G on X"...
    proto: str
    preference: int
    rtype: str = ""  # the Type: line, e.g. "static unicast univ"
    attrs: dict = field(default_factory=dict)  # "BGP.local_pref" -> "100"

    def key(self) -> tuple:
        return (self.prefix, self.proto)

    def comparable(self) -> tuple:
        """What a filter can change: preference and the attributes (empty lists dropped)."""
        attrs = {k: v for k, v in self.attrs.items() if v != ""}
        return (self.preference, tuple(sorted(attrs.items())))


def parse_show_route(text: str) -> list[ShownRoute]:
    routes: list[ShownRoute] = []
    prefix = None
    for line in text.splitlines():
        if not line or line.startswith("BIRD ") or line.startswith("Network not"):
            continue
        if line.startswith("\t"):
            body = line.strip()
            if body.startswith("Type: "):
                routes[-1].rtype = body[6:]
            elif ":" in body and routes:
                k, _, v = body.partition(":")
                routes[-1].attrs[k.strip()] = v.strip()
            continue
        m = _HEAD.match(line)
        if not m:
            continue
        pfx = m.group(1) or prefix
        prefix = pfx
        routes.append(ShownRoute(pfx, m.group(2).strip(), m.group(3), int(m.group(5))))
    return routes


class Oracle:
    """A BIRD 1.6.8 daemon on its own socket in ``workdir`` (started in ``netns`` if given)."""

    def __init__(self, sbin: Path, workdir: Path, ipv6: bool = False, netns: str | None = None):
        self.sbin = Path(sbin)
        self.workdir = Path(workdir)
        self.ipv6 = ipv6
        self.netns = netns
        self.sock = self.workdir / "bird.ctl"
        self.log = self.workdir / "bird.log"
        self.proc: subprocess.Popen | None = None

    def _wrap(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def start(self, config_text: str, name: str = "bird.cfg") -> Path:
        cfg = self.workdir / name
        cfg.write_text(f'log "{self.log}" all;\n' + config_text)
        binary = self.sbin / ("bird6" if self.ipv6 else "bird")
        check = subprocess.run([str(binary), "-p", "-c", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"bird -p refuses the test config: {check.stderr.strip()}")
        self.proc = subprocess.Popen(
            self._wrap([str(binary), "-f", "-c", str(cfg), "-s", str(self.sock)]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            if self.proc.poll() is not None:
                out, err = self.proc.communicate()
                raise RuntimeError(f"bird exited: {err.strip() or out.strip()}")
            if time.monotonic() > deadline:
                raise RuntimeError("bird did not open its control socket")
            time.sleep(0.05)
        return cfg

    def birdc(self, command: str) -> str:
        client = self.sbin / ("birdc6" if self.ipv6 else "birdc")
        out = subprocess.run(
            [str(client), "-s", str(self.sock), command],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout

    def show(self, filter_name: str | None = None) -> list[ShownRoute]:
        cmd = "show route all" if filter_name is None else f"show route filter {filter_name} all"
        return parse_show_route(self.birdc(cmd))

    def show_export(self, protocol: str) -> list[ShownRoute]:
        """``show route export PROTOCOL all``: what PROTOCOL is sent, after its filter."""
        return parse_show_route(self.birdc(f"show route export {protocol} all"))

    def errors(self) -> list[str]:
        if not self.log.exists():
            return []
        return [
            line.split("<ERR> ", 1)[1]
            for line in self.log.read_text().splitlines()
            if "<ERR> filters, line" in line
        ]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


# --- from BIRD's text to bgpd's route and back --------------------------------------------------

_ORIGIN = {"IGP": 0, "EGP": 1, "Incomplete": 2}
_ORIGIN_TEXT = {v: k for k, v in _ORIGIN.items()}
_SOURCE = {"static": "static", "inherit": "kernel", "device": "direct", "BGP": "bgp"}
_EC_KIND = {2: "rt", 3: "ro"}


def _path_of(text: str) -> tuple:
    segs: list = []
    seq: list = []
    for tok in re.findall(r"\{[^}]*\}|\S+", text):
        if tok.startswith("{"):
            if seq:
                segs.append((AS_SEQUENCE, tuple(seq)))
                seq = []
            segs.append((AS_SET, tuple(int(x) for x in tok[1:-1].split())))
        else:
            seq.append(int(tok))
    if seq:
        segs.append((AS_SEQUENCE, tuple(seq)))
    return tuple(segs)


def _ec_of(text: str) -> bytes:
    kind, a, b = (x.strip() for x in text.strip("()").split(","))
    k = {"rt": 2, "ro": 3}[kind]
    return ((k << 48) | (int(a) << 32) | int(b)).to_bytes(8, "big")


def view_of(route: ShownRoute, ipv6: bool = False) -> RouteView:
    """The RouteView of a route as BIRD shows it before any filter."""
    fields: dict = {}
    a = route.attrs
    if "BGP.origin" in a:
        fields["origin"] = _ORIGIN[a["BGP.origin"]]
    if "BGP.as_path" in a:
        fields["as_path"] = _path_of(a["BGP.as_path"])
    if "BGP.next_hop" in a:
        fields["next_hop"] = ipaddress.ip_address(a["BGP.next_hop"].split()[0]).packed
    if "BGP.med" in a:
        fields["med"] = int(a["BGP.med"])
    if "BGP.local_pref" in a:
        fields["local_pref"] = int(a["BGP.local_pref"])
    if a.get("BGP.community"):
        fields["communities"] = tuple(
            (int(x) << 16) | int(y) for x, y in re.findall(r"\((\d+),(\d+)\)", a["BGP.community"])
        )
    if a.get("BGP.large_community"):
        fields["large_communities"] = tuple(
            (int(x), int(y), int(z))
            for x, y, z in re.findall(r"\((\d+), (\d+), (\d+)\)", a["BGP.large_community"])
        )
    if "BGP.originator_id" in a:
        fields["originator_id"] = ipaddress.ip_address(a["BGP.originator_id"]).packed
    if a.get("BGP.cluster_list"):
        fields["cluster_list"] = tuple(
            ipaddress.ip_address(x).packed for x in a["BGP.cluster_list"].split()
        )
    if a.get("BGP.ext_community"):
        fields["ext_communities"] = tuple(
            _ec_of(x) for x in re.findall(r"\([^)]*\)", a["BGP.ext_community"])
        )
    attrs = intern(AttrSet(**fields))
    parts = route.via.split()
    ifname, dest, gw = "", "router", None
    if parts[0] in ("blackhole", "unreachable", "prohibited"):
        dest = {"prohibited": "prohibit"}.get(parts[0], parts[0])
    elif parts[0] == "dev":
        dest, ifname = "device", parts[1]
    elif parts[0] == "via":
        gw = ipaddress.ip_address(parts[1]).packed
        ifname = parts[3] if len(parts) > 3 else ""
    net = ipaddress.ip_network(route.prefix)
    prefix = bytes((net.prefixlen,)) + net.network_address.packed[: (net.prefixlen + 7) // 8]
    source = _SOURCE[route.rtype.split()[0]]
    return RouteView(
        prefix,
        attrs,
        source,
        ipv6=ipv6,
        ifname=ifname,
        krt_metric=int(a["Kernel.metric"]) if "Kernel.metric" in a else None,
        krt_source=int(a["Kernel.source"]) if "Kernel.source" in a else None,
        preference=route.preference,
        gw=gw,
        proto=route.proto,
        dest=dest,
    )


def _path_text(path) -> str:
    out = []
    for seg_type, asns in path:
        if seg_type == AS_SET:
            out.append("{" + " ".join(map(str, asns)) + "}")
        else:
            out.extend(map(str, asns))
    return " ".join(out)


def shown_of(route: ShownRoute, verdict) -> ShownRoute:
    """bgpd's verdict on ``route``, printed the way BIRD prints a route."""
    a: AttrSet = verdict.attrs
    out: dict = {}
    if a.origin is not None:
        out["BGP.origin"] = _ORIGIN_TEXT[a.origin]
    if a.as_path is not None:
        out["BGP.as_path"] = _path_text(a.as_path)
    if a.next_hop is not None:
        out["BGP.next_hop"] = str(
            ipaddress.ip_address(a.next_hop[:16] if len(a.next_hop) > 4 else a.next_hop)
        )
    if a.med is not None:
        out["BGP.med"] = str(a.med)
    if a.local_pref is not None:
        out["BGP.local_pref"] = str(a.local_pref)
    if a.originator_id is not None:
        out["BGP.originator_id"] = str(ipaddress.ip_address(a.originator_id))
    if a.cluster_list:
        out["BGP.cluster_list"] = " ".join(str(ipaddress.ip_address(c)) for c in a.cluster_list)
    if a.communities:
        out["BGP.community"] = " ".join(f"({c >> 16},{c & 0xFFFF})" for c in a.communities)
    if a.ext_communities:
        parts = []
        for raw in a.ext_communities:
            v = int.from_bytes(raw, "big")
            parts.append(f"({_EC_KIND[v >> 48]}, {(v >> 32) & 0xFFFF}, {v & 0xFFFFFFFF})")
        out["BGP.ext_community"] = " ".join(parts)
    if a.large_communities:
        out["BGP.large_community"] = " ".join(f"({x}, {y}, {z})" for x, y, z in a.large_communities)
    temps = dict(verdict.temps or {})
    metric = temps.get("krt_metric", route.attrs.get("Kernel.metric"))
    if metric is not None:
        out["Kernel.metric"] = str(metric)
    for k, v in route.attrs.items():  # the other kernel attributes (bird6: Kernel.scope)
        if k.startswith("Kernel.") and k != "Kernel.metric":
            out[k] = v
    return ShownRoute(route.prefix, route.via, route.proto, verdict.preference, route.rtype, out)

"""Python ports of the Calico Go code that reads BIRD's control socket (CALICO.md §13), rule
for rule, so the tests can run them on BIRD 1.6.8's real replies and on ours.

Each function takes the lines a Go ``bufio.Scanner`` would see on the connection (the
greeting first, then the reply) and returns what the Go code returns, raising
:class:`GoError` where it returns an error. Sources (projectcalico/calico):

* :func:`gr_in_progress` — node/pkg/health/bird/bird.go ``GRInProgress``
* :func:`scan_bird_peers` — node/pkg/health/bird/bird.go and calicoctl/.../node/status.go
  ``scanBIRDPeers`` / ``unmarshalBIRD`` (the peers of the readiness probe and of
  ``calicoctl node status``)
* :func:`check_bird_ready` — node/pkg/health/health.go ``checkBIRDReady``
* :func:`scan_status_peers` / :func:`complete_peer` — node/pkg/status/populators/peers.go
  (CalicoNodeStatus: ``show protocols``, then ``show protocols all <name>``)
* :func:`bird_info` — node/pkg/status/populators/bird_status.go ``scanBIRDStatus``
* :func:`scan_bird_routes` / :func:`route_to_api` — node/pkg/status/populators/route.go
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BGP_PEER = re.compile(r"^(Global|Node|Mesh)_(.+)$")
BGP_TYPES = {"Global": "global", "Mesh": "node-to-node mesh", "Node": "node specific"}
HEADINGS = ["name", "proto", "table", "state", "since", "info"]


class GoError(Exception):
    pass


# ---------------------------------------------------------------------- health: GR
def gr_in_progress(lines: list[str]) -> bool:
    for s in lines:
        if s.startswith("0013"):
            break
        if s.startswith(("0001", "1000", "1011")):
            continue
        if s.startswith("0024"):
            return True
        if s.startswith(" "):
            continue
        raise GoError(f"unexpected output line from BIRD: '{s}'")
    return False


# ---------------------------------------------------------------------- peers table
@dataclass
class Peer:
    peer_ip: str
    peer_type: str
    state: str
    since: str
    bgp_state: str
    info: str = ""


def _unmarshal_peer(line: str, ip_sep: str) -> Peer | None:
    cols = line.split()  # strings.Fields
    if len(cols) < 6 or cols[1] != "BGP":
        return None
    m = BGP_PEER.match(cols[0])
    if not m:
        return None
    return Peer(
        peer_ip=m.group(2).replace("_", ip_sep),
        peer_type=BGP_TYPES[m.group(1)],
        state=cols[3],
        since=cols[4],
        bgp_state=cols[5],
        info=" ".join(cols[6:]),
    )


def scan_bird_peers(lines: list[str], ipv: str = "4") -> list[Peer]:
    ip_sep = ":" if ipv == "6" else "."
    peers: list[Peer] = []
    for s in lines:
        if s.startswith("0000"):
            break
        if s.startswith("0001"):
            continue
        if s.startswith("2002"):
            if s[5:].split() != HEADINGS:
                raise GoError("unknown BIRD table output format")
        elif s.startswith("1002"):
            if p := _unmarshal_peer(s[5:], ip_sep):
                peers.append(p)
        elif s.startswith(" "):
            if p := _unmarshal_peer(s[1:], ip_sep):
                peers.append(p)
        else:
            raise GoError(f"unexpected output line from BIRD: {s}")
    return peers


def check_bird_ready(peers: list[Peer], gr: bool, within_threshold: bool) -> tuple[bool, str]:
    """health.go checkBIRDReady's decision once the peers and GR state are read."""
    if not peers:
        return True, "no peers"
    established = [p for p in peers if p.bgp_state == "Established"]
    if within_threshold:
        if len(established) != len(peers):
            return False, "not all peers established"
        if gr:
            return False, "graceful restart in progress"
        return True, "all established"
    if established:
        return True, "at least one established"
    return False, "no peer established"


# ---------------------------------------------------------------------- CalicoNodeStatus
@dataclass
class StatusPeer:
    session: str
    peer_type: str
    state: str
    since: str
    info: str = ""
    bgp_state: str = ""
    peer_ip: str = ""


def scan_status_peers(lines: list[str]) -> list[StatusPeer]:
    """peers.go scanBIRDPeers (the populator's variant keeps the session name)."""
    out: list[StatusPeer] = []

    def unmarshal(line: str) -> None:
        cols = line.split()
        if len(cols) < 6 or cols[1] != "BGP":
            return
        m = BGP_PEER.match(cols[0])
        if not m or m.group(1) not in BGP_TYPES:
            return
        out.append(StatusPeer(cols[0], m.group(1), cols[3], cols[4], " ".join(cols[6:])))

    for s in lines:
        if s.startswith("0000"):
            break
        if s.startswith("0001"):
            continue
        if s.startswith("2002"):
            if s[5:].split() != HEADINGS:
                raise GoError("unknown BIRD table output format")
        elif s.startswith("1002"):
            unmarshal(s[5:])
        elif s.startswith(" "):
            unmarshal(s[1:])
        else:
            raise GoError(f"unexpected output line from BIRD: {s}")
    return out


BIRD_TO_BGP_STATE = {
    "Idle": "Idle",
    "Connect": "Connect",
    "Active": "Active",
    "OpenSent": "OpenSent",
    "OpenConfirm": "OpenConfirm",
    "Established": "Established",
    "Close": "Close",
}


def complete_peer(peer: StatusPeer, lines: list[str]) -> StatusPeer:
    """peers.go complete(): reads ``show protocols all <session>`` to ``0000``."""

    def get_value(s: str, key: str) -> str | None:
        if key in s:
            return s.replace(key, " ").strip()
        return None

    for s in lines:
        if s.startswith("0000"):
            break
        if (v := get_value(s, "BGP state:")) is not None:
            peer.bgp_state = v
        elif (v := get_value(s, "Neighbor address:")) is not None:
            peer.peer_ip = v
    return peer


def node_status_peer(p: StatusPeer) -> dict:
    """toNodeStatusAPI: the state maps through birdStateToBGPState (unknown -> "")."""
    return {
        "peerIP": p.peer_ip,
        "type": p.peer_type,
        "state": BIRD_TO_BGP_STATE.get(p.bgp_state, ""),
        "since": p.since,
        "established": p.state == "up",
    }


# ---------------------------------------------------------------------- BirdInfo
@dataclass
class BirdStatus:
    ready: bool = False
    version: str = ""
    router_id: str = ""
    server_time: str = ""
    last_boot: str = ""
    last_reconfig: str = ""
    stopped_at: str | None = None  # the line that ended the scan early (a warning in Go)


def bird_info(lines: list[str]) -> BirdStatus:
    st = BirdStatus()

    def unmarshal(line: str) -> None:
        if "BIRD" in line and "ready" in line:
            st.ready = True
        elif line.startswith("BIRD v"):
            st.version = line[len("BIRD ") :]
        elif line.startswith("Router ID is "):
            st.router_id = line[len("Router ID is ") :]
        elif line.startswith("Current server time is "):
            st.server_time = line[len("Current server time is ") :]
        elif line.startswith("Last reboot on "):
            st.last_boot = line[len("Last reboot on ") :]
        elif line.startswith("Last reconfiguration on "):
            st.last_reconfig = line[len("Last reconfiguration on ") :]

    for s in lines:
        if s.startswith("0013"):
            break
        if s.startswith(("0001", "1000", "1011")):
            unmarshal(s[5:])
        elif s.startswith(" "):
            unmarshal(s[1:])
        else:
            st.stopped_at = s
            break
    return st


# ---------------------------------------------------------------------- routes
VIA = re.compile(
    r"(?P<dest>\S*)\s*via\s(?P<gateway>\S*)\s*on\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*"
)
DEV = re.compile(r"(?P<dest>\S*)\s*dev\s(?P<iface>.*)\s\[(?P<from>\S*)\s.*\].*")
BLACKHOLE = re.compile(r"(?P<dest>\S*)\s*blackhole\s\[(?P<from>\S*)\s.*\].*")
UNREACHABLE = re.compile(r"(?P<dest>\S*)\s*unreachable\s\[(?P<from>\S*)\s.*\].*")


@dataclass
class RouteRec:
    dest: str = ""
    gateway: str = ""
    iface: str = ""
    learned_from: str = ""
    primary: bool = False


def _unmarshal_route(line: str, prev: str) -> tuple[RouteRec | None, str]:
    r = RouteRec()
    for word, rx, gw, iface in (
        (" via ", VIA, None, None),
        (" dev ", DEV, "N/A", None),
        (" blackhole ", BLACKHOLE, "N/A", "blackhole"),
        (" unreachable ", UNREACHABLE, "N/A", "unreachable"),
    ):
        if word in line:
            m = rx.search(line)
            if not m:
                return None, ""
            d = m.groupdict()
            r.dest = d["dest"]
            r.gateway = gw if gw is not None else d["gateway"]
            r.iface = iface if iface is not None else d["iface"]
            r.learned_from = d["from"]
            break
    if not r.dest:
        if not prev:
            return None, ""
        r.dest = prev
    if "] *" in line:
        r.primary = True
    return r, r.dest


def scan_bird_routes(lines: list[str]) -> list[RouteRec]:
    routes: list[RouteRec] = []
    prev = ""
    for s in lines:
        if s.startswith("0000"):
            break
        if s.startswith("0001"):
            continue
        if s.startswith("1007"):
            r, prev = _unmarshal_route(s[5:], prev)
        elif s.startswith(" "):
            r, prev = _unmarshal_route(s[1:], prev)
        else:
            raise GoError(f"unexpected output line from BIRD: {s}")
        if r is not None:
            routes.append(r)
    return routes


def route_to_api(r: RouteRec) -> dict:
    """toNodeStatusAPI: a learnedFrom that is neither kernel*/static*/direct* nor a
    Mesh/Node/Global session fails the whole populate."""
    if r.learned_from.startswith("kernel"):
        src, peer = "Kernel", ""
    elif r.learned_from.startswith("static"):
        src, peer = "Static", ""
    elif r.learned_from.startswith("direct"):
        src, peer = "Direct", ""
    else:
        m = BGP_PEER.match(r.learned_from)
        if not m:
            raise GoError(
                f"not a valid line: session name '{r.learned_from}' is not a correct format"
            )
        sep = ":" if ":" in r.dest else "."
        src = "NodeMesh" if m.group(1) == "Mesh" else "BGPPeer"
        peer = m.group(2).replace("_", sep)
    return {
        "type": "FIB" if r.primary else "RIB",
        "destination": r.dest,
        "gateway": r.gateway,
        "interface": r.iface,
        "sourceType": src,
        "peerIP": peer,
    }

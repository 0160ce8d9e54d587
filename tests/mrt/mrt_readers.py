"""Read MRT files back with two independent parsers, into one comparable shape.

* Debian's ``bgpdump`` (libbgpdump, C), in its one-line ``-m`` mode;
* the ``mrtparse`` package (Python).

Both give :class:`Route` rows: one per RIB entry, announced prefix or withdrawn prefix, and
``("state", ...)`` rows for state changes. Absent MED and LOCAL_PREF read as 0 from bgpdump
(it prints 0), so :func:`expected_row` normalises the same way.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from typing import NamedTuple

from bgpd.wire import prefix as pfx
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, AS_SET

ORIGINS = {0: "IGP", 1: "EGP", 2: "INCOMPLETE"}


class Route(NamedTuple):
    kind: str  # "rib", "announce", "withdraw", "state"
    sent: bool  # a _LOCAL record (sent by us)
    peer_ip: str
    peer_as: int
    prefix: str  # or "old->new" for a state change
    path_id: int | None
    as_path: str
    origin: str
    next_hop: str
    local_pref: int
    med: int
    communities: tuple
    large: tuple


def norm(row: Route) -> Route:
    """Canonical text for addresses and prefixes (the readers print IPv6 differently)."""
    prefix = row.prefix
    if "/" in prefix:
        prefix = str(ipaddress.ip_network(prefix, strict=False))
    nh = str(ipaddress.ip_address(row.next_hop)) if row.next_hop else ""
    peer = str(ipaddress.ip_address(row.peer_ip))
    return row._replace(prefix=prefix, next_hop=nh, peer_ip=peer)


def as_path_text(path) -> str:
    out = []
    for seg_type, asns in path or ():
        if seg_type == AS_SET:
            out.append("{" + ",".join(str(a) for a in asns) + "}")
        else:
            out.extend(str(a) for a in asns)
    return " ".join(out)


def expected_row(kind, sent, peer_ip, peer_as, family, key, attrs) -> Route:
    """The row both readers should produce for one route of ours."""
    path_id, p = key if isinstance(key, tuple) else (None, key)
    prefix = pfx.to_str(p, family[0])
    if attrs is None:
        return norm(Route(kind, sent, peer_ip, peer_as, prefix, path_id, "", "", "", 0, 0, (), ()))
    return norm(
        Route(
            kind,
            sent,
            peer_ip,
            peer_as,
            prefix,
            path_id,
            as_path_text(attrs.as_path),
            ORIGINS[attrs.origin],
            pfx.addr_to_str(attrs.next_hop[:16] if len(attrs.next_hop) == 32 else attrs.next_hop),
            attrs.local_pref or 0,
            attrs.med or 0,
            tuple(f"{c >> 16}:{c & 0xFFFF}" for c in attrs.communities),
            tuple(f"{a}:{b}:{c}" for a, b, c in attrs.large_communities),
        )
    )


# --- bgpdump -------------------------------------------------------------------------------


def have_bgpdump() -> bool:
    return shutil.which("bgpdump") is not None


def bgpdump(path: str, local=()) -> list[Route]:
    """Rows of ``bgpdump -m`` (one line per prefix), with the record index (``-p``).

    bgpdump 1.6 prints ``BGP4MP_MESSAGE_[AS4_]LOCAL_ADDPATH`` records (sent, with path ids)
    as if received, showing their sending side (us) as the peer: its one-line mode does not
    know these two subtypes are local, though its multi-line mode puts us in ``FROM`` and
    the neighbor in ``TO``. ``local`` lists our ``(address, AS)`` pairs: a row showing one of
    them is a sent record, and its neighbor is read from the ``TO:`` line of the same record
    in ``-H`` output.
    """
    out = _run(["bgpdump", "-q", "-m", "-l", "-p", path])
    to = None
    local = {(str(ipaddress.ip_address(a)), int(n)) for a, n in local}
    rows = []
    for line in out.splitlines():
        f = line.split("|")
        del f[1]  # the record index, kept aside
        index = int(line.split("|")[1])
        kind = f[0]
        addpath = kind.endswith("_AP")
        sent = "_LOCAL" in kind
        if f[2] == "STATE":
            rows.append(
                Route(
                    "state",
                    False,
                    f[3],
                    int(f[4]),
                    f"{f[5]}->{f[6]}",
                    None,
                    "",
                    "",
                    "",
                    0,
                    0,
                    (),
                    (),
                )
            )
            continue
        peer_ip, peer_as, prefix = f[3], int(f[4]), f[5]
        if (
            kind.startswith("BGP4MP")
            and addpath
            and (str(ipaddress.ip_address(peer_ip)), peer_as) in local
        ):
            if to is None:
                to = _bgpdump_to(path)
            sent = True
            peer_ip, peer_as = to[index]
        i = 6
        path_id = None
        if addpath:
            path_id = int(f[6])
            i = 7
        if f[2] == "W":
            peer_ip = _bgpdump_w_peer(peer_ip, prefix)
            rows.append(
                Route("withdraw", sent, peer_ip, peer_as, prefix, path_id, "", "", "", 0, 0, (), ())
            )
            continue
        kind_name = "rib" if f[2] == "B" else "announce"
        as_path, origin, nh, lp, med, comm, large = f[i : i + 7]
        rows.append(
            Route(
                kind_name,
                sent,
                peer_ip,
                peer_as,
                prefix,
                path_id,
                as_path,
                origin,
                nh,
                int(lp),
                int(med),
                tuple(comm.split()) if comm else (),
                tuple(large.split()) if large else (),
            )
        )
    return [norm(r) for r in rows]


def _run(cmd) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout


def _bgpdump_to(path: str) -> list:
    """``(address, AS)`` of each BGP4MP record's ``TO:`` line in ``bgpdump -H`` output."""
    out = []
    for block in _run(["bgpdump", "-q", "-H", path]).split("\nTIME: ")[0:]:
        to = None
        for line in block.splitlines():
            if line.startswith("TO: "):
                addr, asn = line[4:].split(" AS")
                to = (addr, int(asn))
        out.append(to)
    return out


def _bgpdump_w_peer(peer_ip: str, prefix: str) -> str:
    """bgpdump 1.6 prints the peer address of a ``W`` line in the family of the withdrawn
    prefix: an IPv4 peer withdrawing IPv6 routes shows as ``c000:201::`` for 192.0.2.1 (its
    four octets, zero-padded). Undo that display quirk; the record itself holds IPv4."""
    if ":" in prefix and ":" in peer_ip:
        raw = ipaddress.IPv6Address(peer_ip).packed
        if raw[4:] == bytes(12):
            return str(ipaddress.IPv4Address(raw[:4]))
    return peer_ip


# --- mrtparse ------------------------------------------------------------------------------


def _code(d) -> int:
    return next(iter(d))


def _attrs(attrs: list) -> dict:
    out = {"as_path": None, "as4_path": None, "origin": "", "next_hop": "", "local_pref": 0}
    out.update(med=0, communities=(), large=(), mp_reach=None, mp_unreach=None)
    for a in attrs:
        t = _code(a["type"])
        v = a["value"]
        if t == 1:
            out["origin"] = ORIGINS[_code(v)]
        elif t == 2:
            out["as_path"] = v
        elif t == 17:
            out["as4_path"] = v
        elif t == 3:
            out["next_hop"] = v
        elif t == 4:
            out["med"] = v
        elif t == 5:
            out["local_pref"] = v
        elif t == 8:
            out["communities"] = tuple(v)
        elif t == 32:
            out["large"] = tuple(v)
        elif t == 14:
            out["mp_reach"] = v
            out["next_hop"] = v["next_hop"][0]
        elif t == 15:
            out["mp_unreach"] = v
    return out


def _path_text(segs) -> str:
    out = []
    for s in segs or ():
        if _code(s["type"]) == AS_SET:
            out.append("{" + ",".join(s["value"]) + "}")
        else:
            out.extend(s["value"])
    return " ".join(out)


def _row(kind, sent, peer_ip, peer_as, nlri, a) -> Route:
    prefix = f"{nlri['prefix']}/{nlri['length']}"
    path = a["as4_path"] if a["as4_path"] is not None else a["as_path"]
    return Route(
        kind,
        sent,
        peer_ip,
        int(peer_as),
        prefix,
        nlri.get("path_id"),
        _path_text(path),
        a["origin"],
        a["next_hop"],
        a["local_pref"],
        a["med"],
        a["communities"],
        a["large"],
    )


def _empty(kind, sent, peer_ip, peer_as, nlri) -> Route:
    prefix = f"{nlri['prefix']}/{nlri['length']}"
    return Route(
        kind, sent, peer_ip, int(peer_as), prefix, nlri.get("path_id"), "", "", "", 0, 0, (), ()
    )


def mrtparse(path: str) -> list[Route]:
    from mrtparse import Reader

    rows = []
    peers = []
    for e in Reader(path):
        if e.err:
            raise AssertionError(f"mrtparse: {e.err_msg}")
        d = e.data
        t = _code(d["type"])
        st = _code(d["subtype"])
        if t == 13 and st == 1:
            peers = d["peer_entries"]
        elif t == 13:
            afi = AFI_IPV4 if st in (2, 8) else AFI_IPV6
            for ent in d["rib_entries"]:
                peer = peers[ent["peer_index"]]
                a = _attrs(ent["path_attributes"])
                nlri = {"prefix": d["prefix"], "length": d["length"]}
                if "path_id" in ent:
                    nlri["path_id"] = ent["path_id"]
                rows.append(_row("rib", False, peer["peer_ip"], peer["peer_as"], nlri, a))
            del afi
        elif t == 17 and st == 5:
            old, new = _code(d["old_state"]), _code(d["new_state"])
            rows.append(
                Route(
                    "state",
                    False,
                    d["peer_ip"],
                    int(d["peer_as"]),
                    f"{old}->{new}",
                    None,
                    "",
                    "",
                    "",
                    0,
                    0,
                    (),
                    (),
                )
            )
        elif t == 17:
            sent = st in (6, 7, 10, 11)
            msg = d["bgp_message"]
            if _code(msg["type"]) != 2:
                continue
            a = _attrs(msg.get("path_attributes", []))
            ip, asn = d["peer_ip"], d["peer_as"]
            for w in msg.get("withdrawn_routes", []):
                rows.append(_empty("withdraw", sent, ip, asn, w))
            if a["mp_unreach"] is not None:
                for w in a["mp_unreach"].get("withdrawn_routes", []):
                    rows.append(_empty("withdraw", sent, ip, asn, w))
            if a["mp_reach"] is not None:
                for n in a["mp_reach"].get("nlri", []):
                    rows.append(_row("announce", sent, ip, asn, n, a))
            for n in msg.get("nlri", []):
                rows.append(_row("announce", sent, ip, asn, n, a))
    return [norm(r) for r in rows]


__all__ = ["Route", "bgpdump", "expected_row", "have_bgpdump", "mrtparse"]

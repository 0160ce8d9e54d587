"""Routes and attributes as JSON-ready dicts: the one rendering of an attribute set.

:func:`attrs_to_json` renders the attributes present in an :class:`~bgpd.wire.AttrSet`
(``bgpd decode``, docs/cli.md); :func:`path_to_json` is one path of ``show routes``
(docs/api.md), a fixed set of keys built from the same rendering, so that the two never
say different things about one set.
"""

from typing import Any

from bgpd.policy import as_path_text
from bgpd.wire.constants import ORIGIN_NAMES, SEGMENT_NAMES
from bgpd.wire.prefix import addr_to_str


def next_hops_text(raw: bytes) -> list[str]:
    """The addresses in an MP_REACH_NLRI next hop: one, or global and link-local."""
    n = len(raw)
    if n in (4, 16):
        return [addr_to_str(raw)]
    if n == 32:
        return [addr_to_str(raw[:16]), addr_to_str(raw[16:])]
    return [raw.hex()] if raw else []


def community_text(c: int) -> str:
    return f"{c >> 16}:{c & 0xFFFF}"


def ext_community(raw: bytes) -> str:
    """Route target / route origin in text (``rt:65000:1``), anything else as hex."""
    type_high, subtype = raw[0], raw[1]
    kind = {2: "rt", 3: "ro"}.get(subtype)
    if kind is not None:
        if type_high in (0x00, 0x40):  # two-octet AS specific
            return f"{kind}:{int.from_bytes(raw[2:4], 'big')}:{int.from_bytes(raw[4:], 'big')}"
        if type_high in (0x01, 0x41):  # IPv4 address specific
            return f"{kind}:{addr_to_str(raw[2:6])}:{int.from_bytes(raw[6:], 'big')}"
        if type_high in (0x02, 0x42):  # four-octet AS specific
            return f"{kind}:{int.from_bytes(raw[2:6], 'big')}:{int.from_bytes(raw[6:], 'big')}"
    return raw.hex()


def attrs_to_json(a) -> dict:
    """The path attributes of an :class:`~bgpd.wire.AttrSet` (present ones only)."""
    out: dict[str, Any] = {}
    if a is None:
        return out
    if a.origin is not None:
        out["origin"] = ORIGIN_NAMES[a.origin]
    if a.as_path is not None:
        out["as_path"] = [{"type": SEGMENT_NAMES[t], "asns": list(asns)} for t, asns in a.as_path]
    if a.next_hop is not None:
        out["next_hop"] = ", ".join(next_hops_text(a.next_hop))
    if a.med is not None:
        out["med"] = a.med
    if a.local_pref is not None:
        out["local_pref"] = a.local_pref
    if a.atomic_aggregate:
        out["atomic_aggregate"] = True
    if a.aggregator is not None:
        asn, ident = a.aggregator
        out["aggregator"] = {"asn": asn, "address": addr_to_str(ident)}
    if a.communities:
        out["communities"] = [community_text(c) for c in a.communities]
    if a.large_communities:
        out["large_communities"] = [f"{x}:{y}:{z}" for x, y, z in a.large_communities]
    if a.ext_communities:
        out["extended_communities"] = [ext_community(e) for e in a.ext_communities]
    if a.originator_id is not None:
        out["originator_id"] = addr_to_str(a.originator_id)
    if a.cluster_list:
        out["cluster_list"] = [addr_to_str(c) for c in a.cluster_list]
    if a.unknown:
        out["unknown"] = [
            {"code": code, "flags": flags, "value": value.hex()} for flags, code, value in a.unknown
        ]
    return out


def path_to_json(
    attrs, source: str | None, kind: str = "bgp", best: bool = False
) -> dict[str, Any]:
    """One path of a route for ``show routes``: every key always present (null or empty
    when the attribute is absent); the AS path as text; the next hop's global address."""
    j = attrs_to_json(attrs)
    hops = next_hops_text(attrs.next_hop) if attrs is not None and attrs.next_hop else []
    return {
        "best": best,
        "multipath": False,
        "from": source,
        "source": kind,
        "next_hop": hops[0] if hops else None,
        "as_path": as_path_text(attrs.as_path if attrs is not None else None),
        "origin": j.get("origin"),
        "med": j.get("med"),
        "local_pref": j.get("local_pref"),
        "communities": j.get("communities", []),
        "large_communities": j.get("large_communities", []),
        "extended_communities": j.get("extended_communities", []),
        "originator_id": j.get("originator_id"),
        "cluster_list": j.get("cluster_list", []),
        "lost_at": None,
    }

"""Decoded BGP messages as JSON-ready dicts (the output of ``bgpd decode``).

The keys are a stable interface (docs/cli.md lists them): scripts and tests read them.
Attributes that are absent are left out rather than given as null.
"""

from typing import Any

from bgpd.api.render import attrs_to_json, ext_community, next_hops_text
from bgpd.wire import BGPError, Keepalive, Notification, Open, RouteRefresh, Update
from bgpd.wire import capabilities as caps
from bgpd.wire.constants import AFI_IPV4, AFI_IPV6, FAMILY_NAMES
from bgpd.wire.prefix import to_str

__all__ = ["attrs_to_json", "ext_community", "family_name", "message_to_json", "error_to_json"]

AFI_NAMES = {1: "ipv4", 2: "ipv6", 25: "l2vpn"}
SAFI_NAMES = {
    1: "unicast",
    2: "multicast",
    4: "labeled-unicast",
    5: "mvpn",
    65: "vpls",
    70: "evpn",
    73: "sr-policy",
    128: "vpn",
    132: "rtc",
    133: "flowspec",
    134: "flowspec-vpn",
}
RR_SUBTYPES = {0: "normal", 1: "borr", 2: "eorr"}


def family_name(afi: int, safi: int) -> str:
    """``ipv4``/``ipv6`` for the unicast families bgpd carries, else e.g. ``l2vpn-evpn``."""
    name = FAMILY_NAMES.get((afi, safi))
    if name is not None:
        return name
    return f"{AFI_NAMES.get(afi, f'afi{afi}')}-{SAFI_NAMES.get(safi, f'safi{safi}')}"


def _family(afi: int, safi: int) -> dict:
    return {"afi": afi, "safi": safi, "family": family_name(afi, safi)}


def error_to_json(err: BGPError) -> dict:
    return {
        "code": err.code,
        "subcode": err.subcode,
        "action": err.action.label,
        "reason": err.reason,
        "data": err.data.hex(),
    }


# --- OPEN -----------------------------------------------------------------------------------


def capability_to_json(cap) -> dict:
    out: dict[str, Any] = {"code": cap.code, "name": caps.capability_name(cap.code)}
    if isinstance(cap, caps.Multiprotocol):
        out.update(_family(cap.afi, cap.safi))
    elif isinstance(cap, caps.FourOctetAS):
        out["asn"] = cap.asn
    elif isinstance(cap, caps.GracefulRestart):
        out["restart_time"] = cap.restart_time
        out["restarting"] = cap.restarting
        out["notification"] = cap.notification
        out["families"] = [{**_family(a, s), "forwarding": fwd} for a, s, fwd in cap.families]
    elif isinstance(cap, caps.AddPath):
        out["families"] = [
            {**_family(a, s), "receive": bool(sr & 1), "send": bool(sr & 2)}
            for a, s, sr in cap.entries
        ]
    elif isinstance(cap, caps.ExtendedNextHop):
        out["families"] = [{**_family(a, s), "next_hop_afi": nh} for a, s, nh in cap.entries]
    elif isinstance(cap, caps.LongLivedGR):
        out["families"] = [
            {**_family(a, s), "forwarding": bool(flags & 0x80), "stale_time": stale}
            for a, s, flags, stale in cap.entries
        ]
    elif isinstance(cap, caps.FQDN):
        out["hostname"] = cap.hostname
        out["domain"] = cap.domain
    elif isinstance(cap, caps.UnknownCapability):
        out["value"] = cap.value.hex()
    return out


def _open(msg: Open) -> dict:
    return {
        "version": msg.version,
        "asn": msg.asn,
        "my_as": msg.my_as_field if msg.my_as_field is not None else msg.asn,
        "hold_time": msg.hold_time,
        "router_id": msg.router_id,
        "capabilities": [capability_to_json(c) for c in msg.capabilities],
    }


# --- UPDATE ---------------------------------------------------------------------------------


def _prefixes(items, afi: int) -> list:
    out: list = []
    for item in items:
        if isinstance(item, tuple):
            path_id, p = item
            out.append({"prefix": to_str(p, afi), "path_id": path_id})
        else:
            out.append(to_str(item, afi))
    return out


def _update(msg: Update) -> dict:
    out: dict[str, Any] = {
        "withdrawn": _prefixes(msg.withdrawn, AFI_IPV4),
        "nlri": _prefixes(msg.nlri, AFI_IPV4),
    }
    attrs = attrs_to_json(msg.attrs)
    if msg.mp_reach is not None:
        mp = msg.mp_reach
        attrs["mp_reach"] = {
            **_family(mp.afi, mp.safi),
            "next_hops": next_hops_text(mp.next_hop),
            "nlri": _prefixes(mp.nlri, mp.afi) if mp.afi in (AFI_IPV4, AFI_IPV6) else [],
        }
    if msg.mp_unreach is not None:
        mu = msg.mp_unreach
        attrs["mp_unreach"] = {
            **_family(mu.afi, mu.safi),
            "withdrawn": _prefixes(mu.withdrawn, mu.afi) if mu.afi in (AFI_IPV4, AFI_IPV6) else [],
        }
    out["attributes"] = attrs
    eor = msg.eor()
    if eor is not None:
        out["end_of_rib"] = family_name(*eor)
    if msg.error is not None:
        out["error"] = error_to_json(msg.error)
    return out


# --- the rest -------------------------------------------------------------------------------


def _notification(msg: Notification) -> dict:
    out = {
        "code": msg.code,
        "subcode": msg.subcode,
        "data": msg.data.hex(),
        "reason": msg.reason,
    }
    sc = msg.shutdown_communication
    if sc is not None and sc.invalid is None:
        out["shutdown_message"] = sc.text
    elif sc is not None:
        # RFC 9003 §4: reported as invalid, its octets kept (never shown as text)
        out["shutdown_invalid"] = {"reason": sc.invalid, "raw": sc.raw.hex()}
    return out


def _route_refresh(msg: RouteRefresh) -> dict:
    out = {
        **_family(msg.afi, msg.safi),
        "subtype": msg.subtype,
        "subtype_name": RR_SUBTYPES.get(msg.subtype, f"reserved-{msg.subtype}"),
    }
    if msg.orf:
        out["orf"] = msg.orf.hex()  # RFC 5291 ORF entries, raw
    return out


_CONVERT = {
    Open: ("OPEN", _open),
    Update: ("UPDATE", _update),
    Notification: ("NOTIFICATION", _notification),
    Keepalive: ("KEEPALIVE", lambda msg: {}),
    RouteRefresh: ("ROUTE-REFRESH", _route_refresh),
}


def message_to_json(msg, length: int) -> dict:
    """One decoded message as a dict; ``length`` is its total length, header included."""
    name, convert = _CONVERT[type(msg)]
    return {"type": name, "length": length, **convert(msg)}

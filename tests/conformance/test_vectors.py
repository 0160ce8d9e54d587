"""Other implementations' test vectors through bgpd's decoder (``../shared/corpora/bgp-vectors``).

774 BGP messages that ExaBGP, FRR, GoBGP, yabgp, rustbgpd, bio-rd, scapy, holo and bgpkit wrote
as their own tests, each with the result its source asserts (``SOURCES.md`` there), and three
RIPE RIS update streams (46,088 UPDATEs from bgpkit's fixtures). Every vector is decoded as
``bgpd decode`` decodes it (:func:`bgpd.cli.decode.decode_context` with the vector's options,
:func:`bgpd.cli.decode.decode_stream`) and every field its source asserts is compared exactly.

Where bgpd deliberately disagrees with a source, the vector is in :data:`DISAGREE`, the one
reviewed table, with the RFC section that decides and what bgpd does instead (``ours``): the
test then checks that the source's expectation still fails (a disagreement that went away must
leave the table) and that bgpd meets its own. Nothing else is skipped, and the comparison is
never loosened: vectors marked ``"applies": false`` (families bgpd does not carry) must pass
or be in the table too.

Two readings of a source's vocabulary, both from its own code: FRR prints an AS_PATH after
normalising it (:func:`frr_path`), and a source's single "next hop" of an MP_REACH_NLRI is its
first (global) address. ``bgpd decode`` takes an IPv6 next hop for IPv4 NLRI as negotiated
(RFC 8950): the vectors carry no such option, and the two that use it come from a session that
negotiated it (ExaBGP's ``extended-nexthop`` configuration) or from a parser test (GoBGP).

The tally (``python tests/conformance/test_vectors.py`` prints every failure): 774 vectors,
717 agree, 57 reviewed disagreements below.
"""

from __future__ import annotations

import collections
import gzip
import json
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from bgpd.cli.decode import decode_context, decode_stream, is_error
from bgpd.cli.jsonfmt import family_name
from bgpd.wire.constants import FAMILY_BY_NAME

# Where the ``shared_corpora`` fixture looks (tests/conftest.py): ../shared beside the project.
# The vectors are listed at collection time, before fixtures run; the tests then ask the
# fixture, which skips (or fails under BGPD_REQUIRE_PEERS=1) when the corpus is absent.
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "bgp-vectors"


# --- the reviewed disagreements --------------------------------------------------------------


class Disagree(NamedTuple):
    """A vector whose source bgpd deliberately contradicts."""

    rfc: str  # the section(s) that decide
    why: str
    ours: dict  # bgpd's result, in the vector's vocabulary: replaces the source's keys
    drop: tuple = ()  # keys of the source's expectation that no longer apply


W8 = {"verdict": "withdraw", "code": 3, "subcode": 8}
W11 = {"verdict": "withdraw", "code": 3, "subcode": 11}

LOOPBACK = (
    "RFC 1122 §3.2.1.3(g), RFC 4291 §2.5.3, RFC 4271 §6.3",
    "a loopback next hop is not a host address outside a host: treat-as-withdraw (3/8). "
    "ExaBGP's tests run on 127.0.0.1, and bgpd accepts loopback next hops from a session "
    "between two loopback addresses (bgpd.wire.nexthop), which a vector cannot say it is",
)
CONFED = (
    "RFC 5065 §5, RFC 7606 §7.2",
    "bgpd is in no confederation, so AS_CONFED_* segments come from a neighbor outside ours "
    "whatever the session (FRR's parser tests do not check the peer): malformed AS_PATH, "
    "treat-as-withdraw",
)
MULTICAST6 = (
    "RFC 4291 §2.7, RFC 4271 §6.3",
    "FRR's parser test uses fffe:... (multicast) as the next hop; FRR itself refuses it before "
    "use (bgp_update_martian_nexthop): treat-as-withdraw (3/8)",
)
UNCARRIED = (
    "RFC 4760 §8, RFC 5492 §3",
    "AFI/SAFI 1/128 is never offered by bgpd, so its NLRI are kept unparsed and unused; "
    "FRR parses VPNv4 NLRI and finds the bad prefix lengths",
)
UNKNOWN_CAP = (
    "RFC 5492 §3",
    "a capability bgpd does not implement (ORF 3, BGP Role 9) is ignored whatever its length",
)

_OK = {"verdict": "ok"}


def _d(reason: tuple, ours: dict, drop: tuple = ()) -> Disagree:
    return Disagree(reason[0], reason[1], ours, drop)


DISAGREE: dict[str, Disagree] = {
    # --- NEXT_HOP classes (bgpd.wire.nexthop) ---
    **{
        f"exabgp/{ci}": _d(LOOPBACK, W8, ("announce_nh",))
        for ci in (
            "api-check.ci:10",
            "api-healthcheck-module.ci:3",
            "api-healthcheck-withdraw.ci:5",
            "api-multiple-api.ci:5",
            "api-multiple-api.ci:9",
            "api-nexthop-self.ci:5",
            "api-nexthop-self.ci:8",
            "api-nexthop-self.ci:11",
            "api-nexthop-self.ci:14",
            "api-nexthop-self.ci:17",
            "api-nexthop-self.ci:20",
            "conf-ipself4.ci:3",
        )
    },
    "exabgp/api-check.ci:8": _d(LOOPBACK, W8),  # ::1 in MP_REACH_NLRI
    "exabgp/conf-ipself6.ci:4": _d(LOOPBACK, W8),
    "exabgp/conf-attributes.ci:10": Disagree(
        "RFC 1122 §3.2.1.3(c), RFC 4271 §6.3",
        "NEXT_HOP 255.255.255.255 (limited broadcast) is not a host address: treat-as-withdraw",
        W8,
        ("announce_nh",),
    ),
    "yabgp/test_nexthop.py/test_parse/0.0.0.0": Disagree(
        "RFC 1122 §3.2.1.3(a), RFC 4271 §6.3",
        "NEXT_HOP 0.0.0.0 ('this host on this network') is not a host address: "
        "treat-as-withdraw (yabgp's test only parses the attribute)",
        W8,
        ("attrs",),
    ),
    "yabgp/test_nexthop.py/test_parse/255.255.255.255": Disagree(
        "RFC 1122 §3.2.1.3(c), RFC 4271 §6.3",
        "NEXT_HOP 255.255.255.255 is the limited broadcast address: treat-as-withdraw",
        W8,
        ("attrs",),
    ),
    **{
        f"frr/test_mp_attr.c/mp_reach_segments/{name}": _d(MULTICAST6, W8)
        for name in (
            "IPv6/IPV6 MP Reach, global nexthop, 1 NLRI",
            "IPv6-2/IPV6 MP Reach, global nexthop, 2 NLRIs",
            "IPv6-default/IPV6 MP Reach, global nexthop, 2 NLRIs + default",
            "IPv6-lnh/IPV6 MP Reach, global+local nexthops, 2 NLRIs + default",
        )
    },
    "gobgp/Test_PathAttributeNextHop_InvalidLength/valid IPv6": Disagree(
        "RFC 4271 §4.3, RFC 7606 §7.3",
        "the NEXT_HOP attribute is 4 octets; GoBGP's struct test puts an IPv6 address in it "
        "(an IPv6 next hop belongs in MP_REACH_NLRI): attribute length error, treat-as-withdraw",
        {"verdict": "withdraw", "code": 3, "subcode": 5},
    ),
    "exabgp/extended-nexthop.ci:6": Disagree(
        "RFC 2545 §3, RFC 7606 §7.11",
        "an IPv6 unicast next hop is 16 or 32 octets; a 4-octet one has a length inconsistent "
        "with the AFI, so MP_REACH_NLRI is malformed: session reset (3/9)",
        {"verdict": "reset", "code": 3, "subcode": 9},
        ("type", "attrs", "announce", "announce_nh"),
    ),
    # --- AS_PATH ---
    **{
        f"frr/test_aspath.c/{name}": _d(CONFED, W11, ("as_path_frr",))
        for name in (
            "test_segments/6/confed",
            "test_segments/7/confed2",
            "test_segments/8/confset",
            "test_segments/9/confmulti",
            "test_segments/20/reconcile_confed",
            "test_segments/30/confmulti_asdot+",
            "reconcile_tests/2",
        )
    },
    "yabgp/test_aspath.py/test_parse_as_set_as_federate": _d(CONFED, W11, ("attrs",)),
    "frr/test_aspath.c/aspath_tests/12": Disagree(
        "RFC 6793 §6",
        "AS_CONFED_* segments in AS4_PATH are discarded before the path is rebuilt: the "
        "AS_PATH of the old speaker stands",
        {"verdict": "ok", "as_path_frr": "8466 3 52737 4096"},
    ),
    # --- other attributes ---
    "rustbgpd/attribute.rs/decode_communities_empty": Disagree(
        "RFC 7606 §7.8",
        "a COMMUNITIES attribute of length 0 is malformed (not a non-zero multiple of 4): "
        "treat-as-withdraw",
        {"verdict": "withdraw", "code": 3, "subcode": 5},
    ),
    "rustbgpd/attribute.rs/decode_extended_communities_empty": Disagree(
        "RFC 7606 §7.14",
        "an EXTENDED_COMMUNITIES attribute of length 0 is malformed (not a non-zero multiple "
        "of 8): treat-as-withdraw",
        {"verdict": "withdraw", "code": 3, "subcode": 5},
    ),
    "rustbgpd/validate.rs/valid_ibgp_update_no_next_hop": Disagree(
        "RFC 4271 §5, RFC 7606 §3(d)",
        "NEXT_HOP is well-known mandatory for NLRI in the UPDATE's NLRI field, iBGP included: "
        "missing, the routes are treated as withdrawn",
        {"verdict": "withdraw", "code": 3, "subcode": 3},
    ),
    "yabgp/test_atomicaggregate.py/test_parse/with-value": Disagree(
        "RFC 4271 §6.3, RFC 7606 §7.6",
        "an ATOMIC_AGGREGATE with a value has a length that conflicts with the expected one: "
        "Attribute Length Error (3/5), attribute discard; yabgp says 3/9",
        {"verdict": "discard", "code": 3, "subcode": 5},
    ),
    "exabgp/conf-generic-attribute.ci:6": Disagree(
        "RFC 4271 §6.3",
        "flags 0x60 make attribute 153 well-known (not optional); an unrecognized well-known "
        "attribute is 3/2, a session reset (RFC 7606 does not relax it)",
        {"verdict": "reset", "code": 3, "subcode": 2},
        ("type", "attrs", "unknown_has", "announce", "announce_nh"),
    ),
    "exabgp/conf-generic-attribute.ci:9": Disagree(
        "RFC 4271 §6.3",
        "flags 0x70 (0x60 with extended length): unrecognized well-known attribute, 3/2",
        {"verdict": "reset", "code": 3, "subcode": 2},
        ("type", "attrs", "unknown_has", "announce", "announce_nh"),
    ),
    "gobgp/Test_MalformedUpdateMsg/invalid-origin-flags": Disagree(
        "RFC 7606 §5.2",
        "the UPDATE has path attributes but no NLRI, so a treat-as-withdraw error cannot be "
        "trusted to have found them: session reset (3/4)",
        {"verdict": "reset", "code": 3, "subcode": 4},
        ("type",),
    ),
    # --- MP_REACH_NLRI ---
    "frr/test_mp_attr.c/mp_reach_segments/IPv6-bug/IPv6, global nexthop, 1 default NLRI": (
        Disagree(
            "RFC 4760 §3, RFC 7606 §7.11",
            "the octets hold a 32-octet next hop and no NLRI (the /0 of the description is the "
            "reserved octet); an empty NLRI field is no malformation RFC 7606 lists: nothing "
            "announced, no error (FRR resets on an empty MP_REACH_NLRI)",
            _OK,
        )
    ),
    **{
        f"frr/test_mp_attr.c/mp_reach_segments/{name}": _d(UNCARRIED, _OK)
        for name in (
            "IPv4-VPNv4-bogus-plen/IPv4/MPLS-labeled VPN MP Reach, RD, Nexthop, NLRI / bogus p'len",
            "IPv4-VPNv4-plen1-short/IPv4/VPNv4 MP Reach, RD, Nexthop, 2 NLRIs, 1st plen short",
            "IPv4-VPNv4-plen1-long/IPv4/VPNv4 MP Reach, RD, Nexthop, 2 NLRIs, 1st plen long",
            "IPv4-VPNv4-plenn-long/IPv4/VPNv4 MP Reach, RD, Nexthop, 3 NLRIs, last plen long",
            "IPv4-VPNv4-plenn-short/IPv4/VPNv4 MP Reach, RD, Nexthop, 2 NLRIs, last plen short",
            "IPv4-VPNv4-0-nlri/IPv4/VPNv4 MP Reach, RD, Nexthop, 3 NLRI, 3rd 0 bogus",
        )
    },
    "frr/test_attr_parse.c/local-pref-len-3-ebgp-oad": Disagree(
        "RFC 7606 §7.5",
        "bgpd has no OAD peer type (draft-uttaro-idr-bgp-oad): from an external peer LOCAL_PREF "
        "is discarded whatever its length",
        _OK,
    ),
    "frr/test_attr_parse.c/local-pref-len-0-ebgp-oad": Disagree(
        "RFC 7606 §7.5",
        "as above: no OAD peers, LOCAL_PREF from an external peer is discarded",
        _OK,
    ),
    # --- OPEN ---
    "bio-rd/TestDecodeOptParams/Add path capability with multiple entries": Disagree(
        "RFC 5492 §4, RFC 4271 §6.2",
        "the test's Capabilities parameter says 6 octets but holds an 8-octet ADD-PATH "
        "capability: the OPEN is malformed (2/0); bio-rd ignores the parameter length",
        {"verdict": "reset", "code": 2, "subcode": 0},
        ("type", "caps"),
    ),
    "frr/test_capability.c/test_segments/padded": Disagree(
        "RFC 2918 §2",
        "the Route Refresh capability has length 0; one of length 2 is malformed (2/0), as "
        "BIRD also answers",
        {"verdict": "reset", "code": 2, "subcode": 0},
        ("type",),
    ),
    "frr/test_capability.c/test_segments/minsize": _d(UNKNOWN_CAP, _OK),
    "frr/test_capability.c/misc_segments/ORF-empty": _d(UNKNOWN_CAP, _OK),
    "frr/test_capability.c/misc_segments/Role-long": _d(UNKNOWN_CAP, _OK),
    "frr/test_capability.c/misc_segments/Role-empty": _d(UNKNOWN_CAP, _OK),
    "frr/test_capability.c/mp_segments/MP5": Disagree(
        "RFC 8277 §2 (IANA SAFI 4), RFC 4364 §4.3.4 (SAFI 128)",
        "the octets say AFI 2 SAFI 4 (labeled unicast); FRR's test expects 128 (MPLS VPN) "
        "from them",
        {"verdict": "ok", "caps": [{"code": 1, "afi": 2, "safi": 4}]},
    ),
    # --- NOTIFICATION, ROUTE-REFRESH ---
    "exabgp/unit/test_notification_shutdown_too_large_communication": Disagree(
        "RFC 9003 §2",
        "a Shutdown Communication may be up to 255 octets (RFC 8203's limit of 128, which "
        "ExaBGP keeps, was lifted): this 150-octet one is valid",
        {"notification": {"code": 6, "subcode": 2, "shutdown_message": "A" * 150}},
        ("keys_absent",),
    ),
    "yabgp/test_route_refresh.py/test_construct_cisco_route_refresh": Disagree(
        "RFC 4271 §6.1",
        "message type 128 (Cisco's pre-RFC 2918 ROUTE-REFRESH) is not a BGP message type: "
        "Bad Message Type (1/3)",
        {"verdict": "reset", "code": 1, "subcode": 3},
        ("type", "route_refresh"),
    ),
}


# --- comparing ------------------------------------------------------------------------------


def load_vectors(directory: Path) -> list[dict]:
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        with path.open() as f:
            out.extend(json.loads(line) for line in f if line.strip())
    return out


def context(opts: dict):
    """The context ``bgpd decode`` would use with the vector's options."""
    families = frozenset(
        FAMILY_BY_NAME[n] for n in filter(None, opts.get("add_path", "").split(","))
    )
    return decode_context(
        as2=opts.get("as2", False), add_path=families, ebgp=opts.get("ebgp", False)
    )


def verdict(obj: dict) -> str:
    if is_error(obj):
        return "reset"
    err = obj.get("error")
    if err is None:
        return "ok"
    return {"treat-as-withdraw": "withdraw", "attribute-discard": "discard"}[err["action"]]


def _key(item) -> str:
    return json.dumps(item, sort_keys=True)


def _multiset(items) -> collections.Counter:
    return collections.Counter(_key(i) for i in items)


def subset(expected, actual) -> bool:
    """``expected`` is contained in ``actual``: dict keys a subset, lists element-wise."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return expected == actual


def frr_path(as_path: list) -> str:
    """AS_PATH as FRR prints it: FRR normalises a path when it parses it (``bgp_aspath.c``
    ``assegment_normalise``: AS_SET and AS_CONFED_SET members sorted and deduplicated, as
    RFC 4271 §4.3 makes a set unordered; adjacent AS_SEQUENCEs merged), then writes
    sequences ``1 2``, sets ``{3,4}``, confederation sequences ``(5 6)`` and sets ``[7,8]``."""
    merged: list = []
    for seg in as_path:
        t, asns = seg["type"], list(seg["asns"])
        if merged and t == "sequence" and merged[-1][0] == t:
            merged[-1][1].extend(asns)
        else:
            merged.append((t, asns))
    words = []
    for t, asns in merged:
        if t in ("set", "confed_set"):
            asns = sorted(set(asns))
        text = [str(a) for a in asns]
        if t == "sequence":
            words.append(" ".join(text))
        elif t == "set":
            words.append("{" + ",".join(text) + "}")
        elif t == "confed_sequence":
            words.append("(" + " ".join(text) + ")")
        else:
            words.append("[" + ",".join(text) + "]")
    return " ".join(words)


def announced(obj: dict) -> dict:
    out = collections.defaultdict(list)
    if obj.get("nlri"):
        out["ipv4"].extend(obj["nlri"])
    mp = obj.get("attributes", {}).get("mp_reach")
    if mp and mp["nlri"]:
        out[mp["family"]].extend(mp["nlri"])
    return out


def withdrawn(obj: dict) -> dict:
    out = collections.defaultdict(list)
    if obj.get("withdrawn"):
        out["ipv4"].extend(obj["withdrawn"])
    mu = obj.get("attributes", {}).get("mp_unreach")
    if mu and mu["withdrawn"]:
        out[mu["family"]].extend(mu["withdrawn"])
    return out


def next_hop_of(obj: dict, family: str):
    attrs = obj.get("attributes", {})
    if family == "ipv4" and obj.get("nlri"):
        return attrs.get("next_hop")
    mp = attrs.get("mp_reach")
    if mp and mp["family"] == family and mp["next_hops"]:
        # the source names one next hop: the first (global) one of the MP_REACH_NLRI
        return mp["next_hops"][0]
    return None


def compare(exp: dict, obj: dict) -> list[str]:
    """Every way ``obj`` (one decoded message) differs from the expectation ``exp``."""
    bad = []

    def check(name, want, got):
        if want != got:
            bad.append(f"{name}: want {want!r}, got {got!r}")

    ours = verdict(obj)
    want = exp.get("verdict")
    if want is not None:
        wants = want if isinstance(want, list) else [want]
        if ours not in wants:
            bad.append(f"verdict: want {want!r}, got {ours!r} ({obj.get('error')})")
    if "type" in exp and "type" in obj:
        check("type", exp["type"], obj["type"])
    elif "type" in exp and ours == "reset" and exp.get("verdict") is None:
        bad.append(f"type: want {exp['type']}, got an error {obj['error']}")
    err = obj.get("error")
    for k in ("code", "subcode"):
        if k in exp:
            check(k, exp[k], err.get(k) if err else None)
    if "header_subcodes" in exp and err and err.get("code") == 1:  # noqa: SIM102
        if err["subcode"] not in exp["header_subcodes"]:
            bad.append(f"header subcode {err['subcode']} not in {exp['header_subcodes']}")
    for k in ("withdrawn", "nlri"):
        if k in exp:
            check(k, _multiset(exp[k]), _multiset(obj.get(k, [])))
        if k + "_has" in exp:
            missing = _multiset(exp[k + "_has"]) - _multiset(obj.get(k, []))
            if missing:
                bad.append(f"{k}_has: missing {list(missing)}")
        if k + "_count" in exp:
            check(k + "_count", exp[k + "_count"], len(obj.get(k, [])))
    if "announce" in exp:
        got = announced(obj)
        for fam, items in exp["announce"].items():
            check(f"announce[{fam}]", _multiset(items), _multiset(got.get(fam, [])))
    if "withdraw" in exp:
        got = withdrawn(obj)
        for fam, items in exp["withdraw"].items():
            check(f"withdraw[{fam}]", _multiset(items), _multiset(got.get(fam, [])))
    for fam, nh in exp.get("announce_nh", {}).items():
        check(f"announce_nh[{fam}]", nh, next_hop_of(obj, fam))
    attrs = obj.get("attributes", {})
    for k, v in exp.get("attrs", {}).items():
        check(f"attrs.{k}", v, attrs.get(k))
    for k in exp.get("attrs_absent", ()):
        if k in attrs:
            bad.append(f"attrs.{k} present: {attrs[k]!r}")
    for k in exp.get("keys_absent", ()):
        if k in obj:
            bad.append(f"{k} present: {obj[k]!r}")
    for k in ("mp_reach", "mp_unreach"):
        if k not in exp:
            continue
        mp = attrs.get(k)
        if exp[k] is None:  # the source asserts there is none
            if mp is not None:
                bad.append(f"{k} present: {mp!r}")
            continue
        if mp is None:
            bad.append(f"{k} absent")
            continue
        items = mp["nlri"] if k == "mp_reach" else mp["withdrawn"]
        for f, v in exp[k].items():
            if f in ("nlri", "withdrawn"):
                check(f"{k}.{f}", _multiset(v), _multiset(items))
            elif f.endswith("_has"):
                missing = _multiset(v) - _multiset(items)
                if missing:
                    bad.append(f"{k}.{f}: missing {list(missing)}")
            elif f.endswith("_count"):
                check(f"{k}.{f}", v, len(items))
            else:
                check(f"{k}.{f}", v, mp.get(f))
    if "as_path_asns" in exp:
        path = attrs.get("as_path", [])
        check("as_path_asns", exp["as_path_asns"], [a for s in path for a in s["asns"]])
    if "as_path_frr" in exp:
        check("as_path_frr", exp["as_path_frr"], frr_path(attrs.get("as_path", [])))
    if "unknown_has" in exp:
        codes = {u["code"] for u in attrs.get("unknown", [])}
        missing = set(exp["unknown_has"]) - codes
        if missing:
            bad.append(f"unknown_has: missing {sorted(missing)}")
    if "eor" in exp:
        check("eor", exp["eor"], obj.get("end_of_rib"))
    if "eor_afi_safi" in exp:
        check("eor_afi_safi", family_name(*exp["eor_afi_safi"]), obj.get("end_of_rib"))
    if "open" in exp:
        got = {k: obj.get(k) for k in exp["open"]}
        check("open", exp["open"], got)
    if "cap_codes" in exp:
        check("cap_codes", exp["cap_codes"], [c["code"] for c in obj.get("capabilities", [])])
    for cap in exp.get("caps", ()):
        if not any(subset(cap, c) for c in obj.get("capabilities", [])):
            bad.append(f"caps: no capability matches {cap!r}")
    if "notification" in exp:
        got = {k: obj.get(k) for k in exp["notification"]}
        check("notification", exp["notification"], got)
    if "route_refresh" in exp:
        got = {k: obj.get(k) for k in exp["route_refresh"]}
        check("route_refresh", exp["route_refresh"], got)
    return bad


def run_vector(v: dict) -> list[str]:
    ctx = context(v.get("opts", {}))
    data = bytes.fromhex(v["hex"])
    objs = list(decode_stream(data, ctx))
    if "msgs" in v:
        exps = v["msgs"]
        if len(objs) != len(exps):
            return [f"{len(objs)} messages decoded, {len(exps)} expected: {objs}"]
        pairs = enumerate(zip(exps, objs, strict=True))
        return [f"message {i}: {b}" for i, (e, o) in pairs for b in compare(e, o)]
    if len(objs) != 1:
        return [f"{len(objs)} objects decoded, one expected: {objs}"]
    return compare(v["expect"], objs[0])


def run_stream(v: dict, directory: Path) -> list[str]:
    ctx = context(v.get("opts", {}))
    data = gzip.decompress((directory / v["stream"]).read_bytes())
    counts = collections.Counter()
    for obj in decode_stream(data, ctx):
        if "type" not in obj:
            counts["reset"] += 1
            continue
        counts[obj["type"]] += 1
        if obj["type"] == "UPDATE":
            counts["prefix_elems"] += len(obj["withdrawn"]) + len(obj["nlri"])
            a = obj["attributes"]
            if "mp_reach" in a:
                counts["prefix_elems"] += len(a["mp_reach"]["nlri"])
            if "mp_unreach" in a:
                counts["prefix_elems"] += len(a["mp_unreach"]["withdrawn"])
            if "error" in obj:
                counts[obj["error"]["action"]] += 1
    want = v["aggregate"]
    got = {k: counts.get(k, 0) for k in want}
    return [] if got == want else [f"aggregate: want {want}, got {got}"]


def expectation_of(v: dict) -> dict:
    """bgpd's own expectation for a vector in :data:`DISAGREE`."""
    d = DISAGREE[v["id"]]
    exp = {k: x for k, x in v["expect"].items() if k not in d.drop}
    exp.update(d.ours)
    return exp


def _ids(vectors):
    return [v["id"] for v in vectors]


def _all_vectors() -> list[dict]:
    return load_vectors(VECTORS) if VECTORS.is_dir() else []


ALL = _all_vectors()
MESSAGES = [v for v in ALL if "stream" not in v] or [None]
STREAMS = [v for v in ALL if "stream" in v] or [None]


@pytest.fixture
def vectors_dir(shared_corpora) -> Path:
    path = shared_corpora / "bgp-vectors"
    if not path.is_dir():
        pytest.fail(f"{path} is missing from the shared corpora")
    return path


@pytest.mark.parametrize("v", MESSAGES, ids=lambda v: v["id"] if v else "absent")
def test_vector(vectors_dir, v):
    assert v is not None, "the corpus appeared after collection: run pytest again"
    bad = run_vector(v)
    d = DISAGREE.get(v["id"])
    if d is None:
        assert not bad, f"{v['id']} ({v.get('desc', '')}):\n  " + "\n  ".join(bad)
        return
    assert bad, f"{v['id']}: bgpd now agrees with its source; remove it from DISAGREE"
    ours = compare(expectation_of(v), run_objects(v)[0])
    assert not ours, f"{v['id']}: not what DISAGREE says bgpd does ({d.rfc}):\n  " + "\n  ".join(
        ours
    )


@pytest.mark.parametrize("v", STREAMS, ids=lambda v: v["id"] if v else "absent")
def test_ripe_ris_stream(vectors_dir, v):
    """bgpkit's RIPE RIS fixtures: exactly the message and prefix counts bgpkit asserts, and
    no message that would reset the session."""
    assert v is not None, "the corpus appeared after collection: run pytest again"
    assert set(v["aggregate"]) >= {"UPDATE", "prefix_elems", "reset"}
    bad = run_stream(v, vectors_dir)
    assert not bad, bad


def test_disagreements_are_reviewed(vectors_dir):
    """Every entry names a vector of the corpus that is a single message, an RFC section and a
    reason; the tally in the module docstring is the real one."""
    ids = {v["id"]: v for v in ALL}
    for vid, d in DISAGREE.items():
        assert vid in ids, f"{vid} is not in the corpus"
        assert "expect" in ids[vid], f"{vid}: only single-message vectors can disagree"
        assert d.rfc.startswith("RFC ") and "§" in d.rfc and d.why, vid
    n = len(ALL)
    assert f"{n} vectors, {n - len(DISAGREE)} agree, {len(DISAGREE)} reviewed" in " ".join(
        __doc__.split()
    )


def run_objects(v: dict) -> list[dict]:
    return list(decode_stream(bytes.fromhex(v["hex"]), context(v.get("opts", {}))))


if __name__ == "__main__":
    fails = 0
    for v in load_vectors(VECTORS):
        bad = run_stream(v, VECTORS) if "stream" in v else run_vector(v)
        if bad:
            fails += 1
            mark = " [in DISAGREE]" if v["id"] in DISAGREE else ""
            print(v["id"] + mark, "\n    " + "\n    ".join(bad)[:600])
    print(f"{fails} vectors disagree, {len(DISAGREE)} reviewed", file=sys.stderr)

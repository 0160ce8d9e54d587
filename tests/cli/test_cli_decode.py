"""bgpd decode: messages built with the bgpd.wire encoders, decoded back to the JSON keys."""

import json

import pytest
from click.testing import CliRunner

from bgpd.cli.jsonfmt import ext_community, family_name, message_to_json
from bgpd.cli.main import main
from bgpd.wire import (
    AttrSet,
    Keepalive,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    RouteRefresh,
    Update,
    end_of_rib,
)
from bgpd.wire import capabilities as caps
from bgpd.wire.attrs import OPT_T, WK, tlv
from bgpd.wire.constants import IPV6_UNICAST, NO_EXPORT
from bgpd.wire.context import Context
from bgpd.wire.prefix import addr_from_str, from_str


def ip(text: str) -> bytes:
    return addr_from_str(text)


def decode(*args, input=None):
    r = CliRunner().invoke(main, ["decode", *args], input=input)
    objs = [json.loads(line) for line in r.stdout.splitlines()]
    return r, objs


def decode_one(raw: bytes, *args) -> dict:
    r, objs = decode(raw.hex(), *args)
    assert r.exit_code == 0, r.output
    (obj,) = objs
    assert obj["length"] == len(raw)
    return obj


def update_body(attrs: bytes, nlri: bytes = b"", withdrawn: bytes = b"") -> bytes:
    """A hand-made UPDATE (for attribute blocks the encoders would never produce)."""
    body = len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big")
    body += attrs + nlri
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


BASE_ATTRS = tlv(WK, 1, b"\x00") + tlv(WK, 2, b"") + tlv(WK, 3, ip("192.0.2.1"))


# --- OPEN -----------------------------------------------------------------------------------


def test_open():
    msg = Open(
        asn=4200000001,
        hold_time=90,
        router_id="192.0.2.1",
        capabilities=(
            caps.Multiprotocol(1, 1),
            caps.Multiprotocol(25, 70),
            caps.RouteRefresh(),
            caps.EnhancedRouteRefresh(),
            caps.ExtendedMessage(),
            caps.FourOctetAS(4200000001),
            caps.AddPath(((1, 1, 3), (2, 1, 1))),
            caps.GracefulRestart(120, True, True, ((1, 1, True), (2, 1, False))),
            caps.LongLivedGR(((1, 1, 0x80, 3600),)),
            caps.ExtendedNextHop(((1, 1, 2),)),
            caps.FQDN("leaf1", "dc.example"),
            caps.UnknownCapability(200, b"\x01\x02"),
        ),
    )
    obj = decode_one(msg.encode())
    assert obj["type"] == "OPEN"
    assert (obj["version"], obj["asn"], obj["my_as"]) == (4, 4200000001, 23456)
    assert (obj["hold_time"], obj["router_id"]) == (90, "192.0.2.1")
    c = obj["capabilities"]
    assert c[0] == {"code": 1, "name": "multiprotocol", "afi": 1, "safi": 1, "family": "ipv4"}
    assert c[1]["family"] == "l2vpn-evpn"
    assert c[2] == {"code": 2, "name": "route-refresh"}
    assert c[3] == {"code": 70, "name": "enhanced-route-refresh"}
    assert c[4] == {"code": 6, "name": "extended-message"}
    assert c[5] == {"code": 65, "name": "four-octet-as", "asn": 4200000001}
    assert c[6]["families"] == [
        {"afi": 1, "safi": 1, "family": "ipv4", "receive": True, "send": True},
        {"afi": 2, "safi": 1, "family": "ipv6", "receive": True, "send": False},
    ]
    assert c[7] == {
        "code": 64,
        "name": "graceful-restart",
        "restart_time": 120,
        "restarting": True,
        "notification": True,
        "families": [
            {"afi": 1, "safi": 1, "family": "ipv4", "forwarding": True},
            {"afi": 2, "safi": 1, "family": "ipv6", "forwarding": False},
        ],
    }
    assert c[8]["families"] == [
        {"afi": 1, "safi": 1, "family": "ipv4", "forwarding": True, "stale_time": 3600}
    ]
    assert c[9]["families"] == [{"afi": 1, "safi": 1, "family": "ipv4", "next_hop_afi": 2}]
    assert c[10] == {"code": 73, "name": "fqdn", "hostname": "leaf1", "domain": "dc.example"}
    assert c[11] == {"code": 200, "name": "unknown-200", "value": "0102"}


def test_open_two_octet_as():
    obj = decode_one(Open(asn=65001, hold_time=0, router_id="10.0.0.1").encode())
    assert (obj["asn"], obj["my_as"], obj["capabilities"]) == (65001, 65001, [])


# --- UPDATE ---------------------------------------------------------------------------------


def test_update_every_attribute():
    attrs = AttrSet(
        origin=2,
        as_path=((2, (65001, 4200000000)), (1, (1, 2))),
        next_hop=ip("192.0.2.1"),
        med=5,
        local_pref=200,
        atomic_aggregate=True,
        aggregator=(65001, ip("192.0.2.9")),
        communities=((65000 << 16) | 1, NO_EXPORT),
        originator_id=ip("10.0.0.1"),
        cluster_list=(ip("10.0.0.2"), ip("10.0.0.3")),
        ext_communities=(bytes.fromhex("0002fde800000001"), bytes.fromhex("800600004e200000")),
        large_communities=((4200000000, 1, 2),),
        unknown=((OPT_T, 99, b"\xab\xcd"),),
    )
    raw = Update(
        withdrawn=[from_str("10.1.0.0/16")],
        attrs=attrs,
        nlri=[from_str("10.0.0.0/24"), from_str("0.0.0.0/0")],
    ).encode()
    obj = decode_one(raw)
    assert obj["type"] == "UPDATE"
    assert obj["withdrawn"] == ["10.1.0.0/16"]
    assert obj["nlri"] == ["10.0.0.0/24", "0.0.0.0/0"]
    assert "end_of_rib" not in obj and "error" not in obj
    assert obj["attributes"] == {
        "origin": "incomplete",
        "as_path": [
            {"type": "sequence", "asns": [65001, 4200000000]},
            {"type": "set", "asns": [1, 2]},
        ],
        "next_hop": "192.0.2.1",
        "med": 5,
        "local_pref": 200,
        "atomic_aggregate": True,
        "aggregator": {"asn": 65001, "address": "192.0.2.9"},
        "communities": ["65000:1", "65535:65281"],
        "large_communities": ["4200000000:1:2"],
        "extended_communities": ["rt:65000:1", "800600004e200000"],
        "originator_id": "10.0.0.1",
        "cluster_list": ["10.0.0.2", "10.0.0.3"],
        "unknown": [{"code": 99, "flags": 0xE0, "value": "abcd"}],
    }


def test_update_mp_reach_and_unreach():
    attrs = AttrSet(origin=0, as_path=(), local_pref=100)
    nh = ip("2001:db8::1") + ip("fe80::1")
    raw = Update(
        attrs=attrs,
        mp_reach=MpReach(2, 1, nh, [from_str("2001:db8:1::/48")]),
        mp_unreach=MpUnreach(2, 1, [from_str("2001:db8:2::/48")]),
    ).encode()
    a = decode_one(raw)["attributes"]
    assert a["mp_reach"] == {
        "afi": 2,
        "safi": 1,
        "family": "ipv6",
        "next_hops": ["2001:db8::1", "fe80::1"],
        "nlri": ["2001:db8:1::/48"],
    }
    assert a["mp_unreach"] == {
        "afi": 2,
        "safi": 1,
        "family": "ipv6",
        "withdrawn": ["2001:db8:2::/48"],
    }
    assert a["as_path"] == [] and "next_hop" not in a


def test_update_ipv4_over_ipv6_next_hop():
    attrs = AttrSet(origin=0, as_path=(), local_pref=100)
    raw = Update(
        attrs=attrs, mp_reach=MpReach(1, 1, ip("2001:db8::1"), [from_str("10.9.0.0/16")])
    ).encode()
    assert decode_one(raw)["attributes"]["mp_reach"]["next_hops"] == ["2001:db8::1"]


def test_end_of_rib():
    assert decode_one(end_of_rib((1, 1)))["end_of_rib"] == "ipv4"
    obj = decode_one(end_of_rib(IPV6_UNICAST))
    assert obj["end_of_rib"] == "ipv6"
    assert obj["attributes"]["mp_unreach"]["withdrawn"] == []


def test_add_path():
    attrs = AttrSet(origin=0, as_path=(), next_hop=ip("192.0.2.1"), local_pref=100)
    ctx = Context(add_path_tx=frozenset({(1, 1)}))
    raw = Update(
        withdrawn=[(7, from_str("10.1.0.0/16"))],
        attrs=attrs,
        nlri=[(1, from_str("10.0.0.0/24")), (2, from_str("10.0.0.0/24"))],
    ).encode(ctx)
    obj = decode_one(raw, "--add-path", "ipv4")
    assert obj["nlri"] == [
        {"prefix": "10.0.0.0/24", "path_id": 1},
        {"prefix": "10.0.0.0/24", "path_id": 2},
    ]
    assert obj["withdrawn"] == [{"prefix": "10.1.0.0/16", "path_id": 7}]
    # ipv6 ADD-PATH inside MP_REACH_NLRI
    ctx6 = Context(add_path_tx=frozenset({IPV6_UNICAST}))
    raw6 = Update(
        attrs=AttrSet(origin=0, as_path=(), local_pref=100),
        mp_reach=MpReach(2, 1, ip("2001:db8::1"), [(9, from_str("2001:db8::/32"))]),
    ).encode(ctx6)
    obj6 = decode_one(raw6, "--add-path", "ipv4,ipv6")
    assert obj6["attributes"]["mp_reach"]["nlri"] == [{"prefix": "2001:db8::/32", "path_id": 9}]


def test_two_octet_as_peer():
    attrs = AttrSet(
        origin=0, as_path=((2, (65001, 4200000000)),), next_hop=ip("192.0.2.1"), local_pref=100
    )
    raw = Update(attrs=attrs, nlri=[from_str("10.0.0.0/24")]).encode(Context(as4=False))
    obj = decode_one(raw, "--as2")
    # AS_PATH carries AS_TRANS, AS4_PATH the real path: the decoder merges them
    assert obj["attributes"]["as_path"] == [{"type": "sequence", "asns": [65001, 4200000000]}]
    # read as a four-octet peer, the same bytes make no sense
    r, objs = decode(raw.hex())
    assert objs[0].get("error") or objs[0]["attributes"]["as_path"] != obj["attributes"]["as_path"]


def test_ebgp_rules():
    # no LOCAL_PREF: fine for eBGP, a missing well-known attribute for iBGP (the default)
    raw = update_body(BASE_ATTRS, from_str("10.0.0.0/24"))
    obj = decode_one(raw, "--ebgp")
    assert "error" not in obj
    obj = decode_one(raw)
    assert obj["error"]["action"] == "treat-as-withdraw"
    assert obj["error"]["code"] == 3 and obj["error"]["subcode"] == 3


def test_treat_as_withdraw_error():
    bad_origin = tlv(WK, 1, b"\x05") + tlv(WK, 2, b"") + tlv(WK, 3, ip("192.0.2.1"))
    bad_origin += tlv(WK, 5, b"\x00\x00\x00\x64")
    r, objs = decode(update_body(bad_origin, from_str("10.0.0.0/24")).hex())
    assert r.exit_code == 0
    (obj,) = objs
    assert obj["nlri"] == ["10.0.0.0/24"]
    assert obj["error"] == {
        "code": 3,
        "subcode": 6,
        "action": "treat-as-withdraw",
        "reason": "UPDATE Message Error: Invalid ORIGIN Attribute: ORIGIN value 5",
        "data": "40010105",
    }


def test_attribute_discard_error():
    attrs = BASE_ATTRS + tlv(WK, 5, b"\x00\x00\x00\x64") + tlv(WK, 6, b"\x01")
    obj = decode_one(update_body(attrs, from_str("10.0.0.0/24")))
    assert obj["error"]["action"] == "attribute-discard"
    assert "atomic_aggregate" not in obj["attributes"]


def test_extended_message_decodes():
    attrs = AttrSet(origin=0, as_path=(), next_hop=ip("192.0.2.1"), local_pref=100)
    nlri = [from_str(f"10.{i >> 8}.{i & 255}.0/24") for i in range(1500)]
    raw = Update(attrs=attrs, nlri=nlri).encode()
    assert len(raw) > 4096
    assert len(decode_one(raw)["nlri"]) == 1500


# --- the other messages ---------------------------------------------------------------------


def test_notification():
    obj = decode_one(Notification.cease(2, "maintenance until 18:00").encode())
    assert obj["type"] == "NOTIFICATION"
    assert (obj["code"], obj["subcode"]) == (6, 2)
    assert obj["reason"] == "Cease: Administrative Shutdown"
    assert obj["shutdown_message"] == "maintenance until 18:00"
    assert obj["data"] == (bytes([23]) + b"maintenance until 18:00").hex()
    obj = decode_one(Notification(4, 0).encode())
    assert obj["reason"] == "Hold Timer Expired"
    assert "shutdown_message" not in obj and obj["data"] == ""


def test_keepalive_and_route_refresh():
    assert decode_one(Keepalive().encode()) == {"type": "KEEPALIVE", "length": 19}
    obj = decode_one(RouteRefresh(2, 1, 2).encode())
    assert obj == {
        "type": "ROUTE-REFRESH",
        "length": 23,
        "afi": 2,
        "safi": 1,
        "family": "ipv6",
        "subtype": 2,
        "subtype_name": "eorr",
    }


def test_invalid_shutdown_communication_is_reported_not_shown():
    """RFC 9003 §4: an invalid communication (bad UTF-8, a length beyond the data) is reported
    as invalid with its octets, never shown with replacement characters. Fails before the
    fix: "shutdown_message" was "\ufffd\ufffd\ufffd"."""
    obj = decode_one(Notification(6, 2, b"\x03\x80\x81\x82").encode())
    assert "shutdown_message" not in obj
    assert obj["shutdown_invalid"] == {
        "reason": "not valid UTF-8 (octet 0: invalid start byte)",
        "raw": "808182",
    }
    obj = decode_one(Notification(6, 4, b"\x0aABC").encode())
    assert "shutdown_message" not in obj
    assert obj["shutdown_invalid"] == {
        "reason": "length octet 10 but 3 octets follow",
        "raw": "0a414243",
    }
    # valid, with octets after it: shown; a length of 0: no communication at all
    obj = decode_one(Notification(6, 2, b"\x02ok\x01").encode())
    assert obj["shutdown_message"] == "ok" and "shutdown_invalid" not in obj
    obj = decode_one(Notification(6, 2, b"\x00").encode())
    assert "shutdown_message" not in obj and "shutdown_invalid" not in obj


def test_route_refresh_with_orf_entries():
    """RFC 5291 ORF entries after a normal ROUTE-REFRESH: decoded (kept raw), not 7/1 (RFC
    7313 §5 fixes the length of BoRR and EoRR only). Fails before: 7/1 session reset."""
    orf = bytes.fromhex("018000132000000005181815010100000000000a002000")
    obj = decode_one(RouteRefresh(1, 1, 0, orf).encode())
    assert (obj["afi"], obj["safi"], obj["subtype"], obj["orf"]) == (1, 1, 0, orf.hex())
    raw = RouteRefresh(1, 1, 1).encode()
    raw = raw[:16] + (len(raw) + 1).to_bytes(2, "big") + raw[18:] + b"\x00"
    r, objs = decode(raw.hex())  # a BoRR must be 4 octets: 7/1
    assert r.exit_code == 1 and (objs[0]["error"]["code"], objs[0]["error"]["subcode"]) == (7, 1)


def test_confederation_segments_are_treat_as_withdraw():
    """RFC 5065 §5, RFC 7606 §7.2: bgpd is in no confederation, so AS_CONFED_* segments make
    the AS_PATH malformed from any peer (fails before: decoded without error)."""
    for seg in (b"\x03\x01\x00\x00\xfc\x00", b"\x04\x01\x00\x00\xfc\x01"):
        path = tlv(WK, 2, b"\x02\x01\x00\x00\xfd\xe9" + seg)
        attrs = tlv(WK, 1, b"\x00") + path + tlv(WK, 3, ip("192.0.2.1"))
        for ebgp in ((), ("--ebgp",)):
            obj = decode_one(update_body(attrs, from_str("10.0.0.0/24")), *ebgp)
            assert obj["error"]["action"] == "treat-as-withdraw"
            assert (obj["error"]["code"], obj["error"]["subcode"]) == (3, 11)
            assert "confederation" in obj["error"]["reason"]


# --- input forms ----------------------------------------------------------------------------

STREAM = Keepalive().encode() + RouteRefresh(1, 1).encode() + Notification(6, 4).encode()


def _types(objs):
    return [o.get("type") for o in objs]


def test_several_messages_from_stdin_with_colons_and_whitespace():
    text = ":".join(f"{b:02X}" for b in STREAM[:30]) + "\n  " + STREAM[30:].hex() + "\n"
    r, objs = decode(input=text)
    assert r.exit_code == 0, r.output
    assert _types(objs) == ["KEEPALIVE", "ROUTE-REFRESH", "NOTIFICATION"]


def test_several_arguments_and_0x():
    r, objs = decode("0x" + STREAM[:10].hex(), STREAM[10:].hex())
    assert r.exit_code == 0
    assert _types(objs) == ["KEEPALIVE", "ROUTE-REFRESH", "NOTIFICATION"]


def test_raw_file(tmp_path):
    f = tmp_path / "capture.bin"
    f.write_bytes(STREAM)
    r, objs = decode("--raw", str(f))
    assert r.exit_code == 0
    assert _types(objs) == ["KEEPALIVE", "ROUTE-REFRESH", "NOTIFICATION"]
    r, _ = decode("--raw", str(f), "ff")
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("ffzz", "error: invalid hex: 'z' is not a hex digit"),
        ("fff", "error: invalid hex: odd number of digits (3)"),
        ("", "error: no input"),
    ],
)
def test_bad_hex(text, message):
    r, objs = decode(input=text)
    assert r.exit_code == 2
    if text:
        assert objs == [{"error": {"line": 1, "reason": message[len("error: ") :]}}]
        message = message.replace("error: ", "error: line 1: ")
    else:
        assert objs == []
    assert r.stderr.strip() == message


def test_bad_add_path_family():
    r, _ = decode("--add-path", "ipv4,vpnv4", Keepalive().encode().hex())
    assert r.exit_code == 2
    assert "unknown family 'vpnv4'" in r.stderr


# --- malformed input: the messages before it, then the error, exit 1 ------------------------


def test_bad_marker_after_good_messages():
    raw = Keepalive().encode() + b"\x00" * 19
    r, objs = decode(raw.hex())
    assert r.exit_code == 1
    assert objs[0]["type"] == "KEEPALIVE"
    assert objs[1] == {
        "error": {
            "code": 1,
            "subcode": 1,
            "action": "session-reset",
            "reason": "Message Header Error: Connection Not Synchronized: bad marker",
            "data": "",
        }
    }
    assert len(objs) == 2


def test_malformed_update_is_fatal():
    # the attribute block claims 9 octets, its attribute 200
    raw = update_body(b"\x40\x01\xc8" + b"\x00" * 6)
    r, objs = decode(raw.hex())
    assert r.exit_code == 1
    (obj,) = objs
    assert set(obj) == {"error"}
    assert (obj["error"]["code"], obj["error"]["subcode"]) == (3, 5)
    assert obj["error"]["action"] == "session-reset"


def test_malformed_open():
    raw = bytearray(Open(asn=65001, hold_time=90, router_id="10.0.0.1").encode())
    raw[19] = 3  # version 3
    r, objs = decode(bytes(raw).hex())
    assert r.exit_code == 1
    assert objs[0]["error"]["reason"].startswith("OPEN Message Error: Unsupported Version Number")


def test_truncated_message():
    r, objs = decode((Keepalive().encode() + Keepalive().encode()[:10]).hex())
    assert r.exit_code == 1
    assert objs[0]["type"] == "KEEPALIVE"
    assert objs[1]["error"]["reason"].endswith(
        "incomplete message: 10 octets after the last complete message"
    )


def test_bad_length_in_header():
    raw = bytearray(Keepalive().encode())
    raw[17] = 20
    r, objs = decode(bytes(raw).hex())
    assert r.exit_code == 1
    assert (objs[0]["error"]["code"], objs[0]["error"]["subcode"]) == (1, 2)


# --- helpers --------------------------------------------------------------------------------


def test_message_to_json_is_pure():
    assert message_to_json(Keepalive(), 19) == {"type": "KEEPALIVE", "length": 19}


@pytest.mark.parametrize(
    "raw, text",
    [
        ("0002fde800000001", "rt:65000:1"),
        ("0003fde800000001", "ro:65000:1"),
        ("0102c000020100 07".replace(" ", ""), "rt:192.0.2.1:7"),
        ("0202fa56ea0000 2a".replace(" ", ""), "rt:4200000000:42"),
        ("4002fde800000001", "rt:65000:1"),
        ("030c000000000008", "030c000000000008"),
    ],
)
def test_ext_community(raw, text):
    assert ext_community(bytes.fromhex(raw)) == text


def test_family_name():
    assert family_name(1, 1) == "ipv4"
    assert family_name(2, 1) == "ipv6"
    assert family_name(1, 2) == "ipv4-multicast"
    assert family_name(99, 99) == "afi99-safi99"


# --- many inputs: every line decoded, errors in place, the status at the end ---------------


def test_every_line_is_decoded_and_errors_are_reported_in_place():
    """Fails before the fix: decoding stopped at the first malformed message."""
    bad_update = update_body(b"\x40\x01\xc8" + b"\x00" * 6)  # attribute overruns: reset
    bad_marker = b"\x00" * 19
    lines = [
        Keepalive().encode().hex(),
        bad_update.hex() + " " + Keepalive().encode().hex(),  # the next message still decodes
        "not hex",
        bad_marker.hex() + Keepalive().encode().hex(),  # framing lost: the rest of the line too
        (Keepalive().encode()[:10]).hex(),  # unfinished, and the next line starts a message
        RouteRefresh(1, 1).encode().hex(),
    ]
    r, objs = decode(input="\n".join(lines) + "\n")
    assert r.exit_code == 2  # some input was not hex (malformed messages alone: 1)
    kinds = [o.get("type") or o["error"].get("reason", "")[:40] for o in objs]
    assert kinds[0] == "KEEPALIVE"
    assert (objs[1]["error"]["code"], objs[1]["error"]["subcode"]) == (3, 5)
    assert objs[2]["type"] == "KEEPALIVE"
    assert objs[3] == {"error": {"line": 3, "reason": "invalid hex: 'n' is not a hex digit"}}
    assert (objs[4]["error"]["code"], objs[4]["error"]["subcode"]) == (1, 1)
    assert objs[5]["error"]["reason"].endswith(
        "incomplete message: 10 octets after the last complete message"
    )
    assert objs[6]["type"] == "ROUTE-REFRESH"
    assert len(objs) == 7
    r, objs = decode(input="\n".join(lines[:2] + lines[3:]))
    assert r.exit_code == 1 and len(objs) == 6


def test_a_message_may_continue_on_the_next_line():
    """``xxd -p`` wraps lines every 30 octets: a line that does not start with a marker
    continues the unfinished message of the line before."""
    raw = Notification.cease(2, "a maintenance window long enough to wrap").encode()
    text = "\n".join(raw[i : i + 30].hex() for i in range(0, len(raw), 30))
    r, objs = decode(input=text)
    assert r.exit_code == 0, r.output
    assert objs[0]["shutdown_message"] == "a maintenance window long enough to wrap"

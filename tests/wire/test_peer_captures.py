"""Messages captured from real BIRD, GoBGP and FRR sessions (``tests/fixtures/peers/*.txt``).

A capture file has ``#`` comment lines (the header describes the session) and one message per
line, ``in <hex>`` (daemon -> us) or ``out <hex>`` (us -> daemon), each complete with its
header. For every message: it frames as exactly one message, decodes without error,
decode(encode(decode(bytes))) == decode(bytes), and, where the bytes are in the form our
encoder produces (see :func:`not_canonical`), encode(decode(bytes)) == bytes.

The decoding context is the one the session negotiated: taken from the two OPENs in the file
(four-octet AS, ADD-PATH per direction, extended messages, iBGP when both ASes are equal), and
otherwise from the header (two-octet AS when it says "as2" or "NO four-octet AS"; ADD-PATH
when it names it).
"""

from pathlib import Path

import pytest

from bgpd.wire import BGPError, Context, Framer, Open, Update, decode_message
from bgpd.wire.attrs import ATTRS
from bgpd.wire.capabilities import AddPath, ExtendedMessage, FourOctetAS
from bgpd.wire.constants import (
    ATTR_MP_REACH_NLRI,
    ATTR_MP_UNREACH_NLRI,
    FAMILY_BY_NAME,
    FLAG_EXTENDED,
    FLAG_OPTIONAL,
    FLAG_PARTIAL,
    FLAG_TRANSITIVE,
    IPV4_UNICAST,
)

PEERS = Path(__file__).resolve().parent.parent / "fixtures" / "peers"
FILES = sorted(PEERS.glob("*.txt")) if PEERS.is_dir() else []


def read_capture(path: Path) -> tuple[str, list[tuple[str, bytes]]]:
    header, messages = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            header.append(line[1:].strip())
            continue
        direction, _, hexdata = line.partition(" ")
        assert direction in ("in", "out"), f"{path.name}:{n}: direction {direction!r}"
        messages.append((direction, bytes.fromhex(hexdata.strip())))
    return "\n".join(header), messages


def frame(wire: bytes) -> tuple[int, bytes]:
    framer = Framer(max_size=65535)
    msgs = framer.feed(wire)
    assert framer.error is None, framer.error
    assert len(msgs) == 1 and len(framer) == 0, "not exactly one message"
    return msgs[0]


def _addpath(o: Open | None) -> dict:
    for c in o.capabilities if o else ():
        if isinstance(c, AddPath):
            return {(afi, safi): sr for afi, safi, sr in c.entries}
    return {}


def contexts(header: str, messages) -> dict[str, Context]:
    """The receiving side's context for ``in`` (us) and ``out`` (the daemon) messages."""
    opens = {d: decode_message(*frame(w)) for d, w in messages if w[18] == 1}
    ours, theirs = opens.get("out"), opens.get("in")
    text = header.lower()
    says_as2 = "as2" in text.split("\n", 1)[0] or "no four-octet as" in text
    if ours is not None and theirs is not None:
        as4 = all(any(isinstance(c, FourOctetAS) for c in o.capabilities) for o in (ours, theirs))
        assert not (as4 and says_as2), "header says two-octet AS, the OPENs say four-octet"
        ext = all(
            any(isinstance(c, ExtendedMessage) for c in o.capabilities) for o in (ours, theirs)
        )
        ibgp = ours.asn == theirs.asn
        ap_ours, ap_theirs = _addpath(ours), _addpath(theirs)
        rx_us = frozenset(f for f, sr in ap_ours.items() if sr & 1 and ap_theirs.get(f, 0) & 2)
        rx_them = frozenset(f for f, sr in ap_ours.items() if sr & 2 and ap_theirs.get(f, 0) & 1)
    else:
        as4 = not says_as2
        ext = "extended message" in text
        ibgp = "ibgp" in text
        fams = frozenset(
            FAMILY_BY_NAME.get(name, IPV4_UNICAST)
            for name in ("ipv4", "ipv6")
            if f"add-path {name}" in text
        )
        rx_us = rx_them = fams
    return {
        "in": Context(
            as4=as4, ibgp=ibgp, extended_message=ext, add_path_rx=rx_us, add_path_tx=rx_us
        ),
        "out": Context(
            as4=as4, ibgp=ibgp, extended_message=ext, add_path_rx=rx_them, add_path_tx=rx_them
        ),
    }


def not_canonical(msg_type: int, wire: bytes) -> str | None:
    """Why our encoder would write these bytes differently (None: it would write them as-is)."""
    body = wire[19:]
    if msg_type == 1:
        opt_len = body[9]
        if opt_len == 255 and len(body) > 10 and body[10] == 255:
            return "RFC 9072 extended optional parameters"
        params, i = 0, 10
        while i < 10 + opt_len:
            params += 1
            i += 2 + body[i + 1]
        if params > 1:
            return f"{params} optional parameters (we send one)"
        return None
    if msg_type != 2:
        return None
    wlen = int.from_bytes(body[0:2], "big")
    a = 4 + wlen
    alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
    order, i = [], a
    while i < a + alen:
        flags, code = body[i], body[i + 1]
        if flags & FLAG_EXTENDED:
            vlen, vs = int.from_bytes(body[i + 2 : i + 4], "big"), i + 4
            if vlen <= 255:
                return f"attribute {code}: extended length for {vlen} octets"
        else:
            vlen, vs = body[i + 2], i + 3
        if flags & 0x0F:
            return f"attribute {code}: unused flag bits set"
        transitive = flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == FLAG_OPTIONAL | FLAG_TRANSITIVE
        if transitive and code not in ATTRS and not flags & FLAG_PARTIAL:
            return f"attribute {code}: unknown transitive without Partial (we set it)"
        if code == ATTR_MP_REACH_NLRI and body[vs + 4 + body[vs + 3]] != 0:
            return "MP_REACH_NLRI reserved octet not zero"
        order.append(code)
        i = vs + vlen
    rank = {ATTR_MP_REACH_NLRI: -2, ATTR_MP_UNREACH_NLRI: -1}
    if order != sorted(order, key=lambda c: rank.get(c, c)):
        return f"attribute order {order} (we send MP first, then by type code)"
    return None


@pytest.mark.skipif(not FILES, reason=f"no captures in {PEERS} yet (capture helper not run)")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_capture(path: Path):
    header, messages = read_capture(path)
    ctxs = contexts(header, messages)
    problems = []
    for n, (direction, wire) in enumerate(messages):
        ctx = ctxs[direction]
        where = f"{path.name} message {n} ({direction})"
        msg_type, body = frame(wire)
        try:
            m1 = decode_message(msg_type, body, ctx)
        except BGPError as e:
            problems.append(f"{where}: {e!r}")
            continue
        if isinstance(m1, Update) and m1.error is not None:
            problems.append(f"{where}: {m1.error!r}")
        wire2 = m1.encode(ctx)
        m2 = decode_message(*frame(wire2), ctx)
        if m2 != m1:
            problems.append(f"{where}: decode(encode(m)) != m:\n  {m1!r}\n  {m2!r}")
        reason = not_canonical(msg_type, wire)
        if reason is None and wire2 != wire:
            problems.append(f"{where}: re-encoded differently\n  {wire.hex()}\n  {wire2.hex()}")
    assert not problems, "\n".join(problems)


def test_captures_cover_every_peer():
    """The committed captures hold an eBGP and an iBGP session with each real peer: without
    them the tests above would check nothing."""
    names = {p.stem for p in FILES}
    missing = [
        f"{peer}_{kind}"
        for peer in ("bird", "frr", "gobgp")
        for kind in ("ebgp", "ibgp")
        if f"{peer}_{kind}" not in names
    ]
    assert not missing, f"no capture in {PEERS} of {missing}"

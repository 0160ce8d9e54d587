"""``bgpd decode``: BGP messages (hex or raw) to one JSON object per message."""

import json
import re
import sys

import click

from bgpd.wire import BGPError, Context, Framer, decode_message
from bgpd.wire.constants import (
    ERR_HEADER,
    FAMILY_BY_NAME,
    HDR_BAD_LENGTH,
    HEADER_LEN,
    IPV4_UNICAST,
    MARKER,
    MAX_EXTENDED_MESSAGE,
)
from bgpd.wire.errors import Action

from .jsonfmt import error_to_json, message_to_json

_IGNORED = re.compile(r"[\s:]+")


class HexError(ValueError):
    pass


def parse_hex(text: str) -> bytes:
    """Hex digits to bytes; whitespace, colons and a leading ``0x`` per word are ignored."""
    words = [w[2:] if w[:2] in ("0x", "0X") else w for w in text.split()]
    digits = _IGNORED.sub("", "".join(words))
    bad = re.search(r"[^0-9a-fA-F]", digits)
    if bad:
        raise HexError(f"invalid hex: {bad.group()!r} is not a hex digit")
    if len(digits) % 2:
        raise HexError(f"invalid hex: odd number of digits ({len(digits)})")
    return bytes.fromhex(digits)


def _families(value: str) -> frozenset:
    out = set()
    for name in filter(None, (v.strip() for v in value.split(","))):
        if name not in FAMILY_BY_NAME:
            raise click.BadParameter(
                f"unknown family {name!r} (known: {', '.join(FAMILY_BY_NAME)})",
                param_hint="--add-path",
            )
        out.add(FAMILY_BY_NAME[name])
    return frozenset(out)


def _emit(obj: dict) -> None:
    click.echo(json.dumps(obj))


def decode_context(
    as2: bool = False,
    add_path: frozenset = frozenset(),
    ebgp: bool = False,
    extended_next_hop: bool = True,
) -> Context:
    """The context ``bgpd decode`` decodes with: what a session negotiated, as far as the
    options tell (iBGP, four-octet AS, no ADD-PATH; RFC 8950 IPv6 next hops for IPv4 NLRI
    accepted unless ``extended_next_hop`` is false: a captured message can only mean one
    thing). Loopback next hops are invalid, as on a session between two hosts."""
    return Context(
        as4=not as2,
        add_path_rx=add_path,
        add_path_tx=add_path,
        ibgp=not ebgp,
        extended_next_hop=frozenset({IPV4_UNICAST}) if extended_next_hop else frozenset(),
    )


def _message(msg_type: int, body: bytes, ctx: Context) -> dict:
    """One framed message as its JSON dict, or ``{"error": ...}`` if it would reset."""
    try:
        msg = decode_message(msg_type, body, ctx)
    except BGPError as e:
        return {"error": error_to_json(e)}
    fatal = getattr(msg, "error", None)
    if fatal is not None and fatal.action >= Action.AFI_SAFI_DISABLE:
        # an UPDATE error that resets the session: malformed, as a raised one
        return {"error": error_to_json(fatal)}
    return message_to_json(msg, HEADER_LEN + len(body))


def _incomplete(n: int) -> dict:
    err = BGPError(
        ERR_HEADER,
        HDR_BAD_LENGTH,
        b"",
        Action.RESET,
        f"incomplete message: {n} octets after the last complete message",
    )
    return {"error": error_to_json(err)}


class StreamDecoder:
    """Messages out of input given in pieces (the lines of a hex dump).

    Every framed message is decoded on its own: a malformed one gives ``{"error": ...}`` in
    its place and the next one is decoded. A framing error (bad marker, length or type) makes
    the rest of its piece unreadable: it is reported and the piece dropped. A message may
    continue on the next piece (``xxd -p`` wraps lines), unless that piece starts with a
    marker: the unfinished one is then reported as incomplete.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.pending = b""

    def feed(self, data: bytes):
        if self.pending and data[:16] == MARKER:
            yield _incomplete(len(self.pending))
            self.pending = b""
        framer = Framer(max_size=MAX_EXTENDED_MESSAGE)
        for msg_type, body in framer.feed(self.pending + data):
            yield _message(msg_type, body, self.ctx)
        if framer.error is not None:
            yield {"error": error_to_json(framer.error)}
            self.pending = b""
        else:
            self.pending = bytes(framer.buffer)

    def close(self):
        if self.pending:
            yield _incomplete(len(self.pending))
            self.pending = b""


def decode_stream(data: bytes, ctx: Context):
    """Yield a JSON dict per message of ``data``; ``{"error": ...}`` in the place of each
    malformed one (decoding goes on after it while the framing holds)."""
    d = StreamDecoder(ctx)
    yield from d.feed(data)
    yield from d.close()


def is_error(obj: dict) -> bool:
    """An output object that reports a message (or input) that could not be decoded."""
    return "error" in obj and "type" not in obj


@click.command()
@click.argument("hex_words", nargs=-1, metavar="[HEX]...")
@click.option(
    "--raw",
    "raw_file",
    type=click.File("rb"),
    metavar="FILE",
    help="Read raw binary messages from FILE ('-' for stdin) instead of hex.",
)
@click.option("--as2", is_flag=True, help="The peer has no four-octet AS capability.")
@click.option(
    "--add-path",
    "add_path",
    default="",
    metavar="FAMILIES",
    help="Comma-separated families whose NLRI carry ADD-PATH path IDs (ipv4,ipv6).",
)
@click.option(
    "--ebgp",
    is_flag=True,
    help="Apply eBGP rules (LOCAL_PREF discarded, not required) instead of iBGP.",
)
@click.option(
    "--no-extended-next-hop",
    "extended_next_hop",
    flag_value=False,
    default=True,
    help="The session did not negotiate RFC 8950: an IPv6 next hop for IPv4 NLRI is invalid.",
)
def decode(hex_words, raw_file, as2, add_path, ebgp, extended_next_hop):
    """Decode BGP messages and print one JSON object per message.

    The messages (with their 19-octet headers, several may follow each other) are given as
    HEX arguments or, without arguments, read as hex from stdin, line by line; whitespace and
    colons are ignored. A malformed message prints {"error": ...} in its place and decoding
    goes on; the exit status is then 1 (2 if some input was not hex).
    """
    families = _families(add_path)
    ctx = decode_context(as2, families, ebgp, extended_next_hop)
    if raw_file is not None:
        if hex_words:
            raise click.UsageError("give either HEX arguments or --raw FILE, not both")
        pieces = [raw_file.read()]
    else:
        lines = [" ".join(hex_words)] if hex_words else sys.stdin.read().splitlines()
        pieces = []
        for n, line in enumerate(lines, 1):
            try:
                pieces.append(parse_hex(line))
            except HexError as e:
                pieces.append((n, str(e)))
    if not any(isinstance(p, bytes) and p for p in pieces) and not any(
        isinstance(p, tuple) for p in pieces
    ):
        click.echo("error: no input", err=True)
        sys.exit(2)
    decoder = StreamDecoder(ctx)
    status = 0
    for piece in pieces:
        if isinstance(piece, tuple):
            line, reason = piece
            click.echo(f"error: line {line}: {reason}", err=True)
            _emit({"error": {"line": line, "reason": reason}})
            status = 2
            continue
        if not piece:
            continue
        for obj in decoder.feed(piece):
            _emit(obj)
            if is_error(obj):
                status = max(status, 1)
    for obj in decoder.close():
        _emit(obj)
        status = max(status, 1)
    sys.exit(status)

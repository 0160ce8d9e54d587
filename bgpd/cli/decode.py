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


def decode_stream(data: bytes, ctx: Context):
    """Yield a JSON dict per message of ``data``; the last one is ``{"error": ...}`` if the
    stream is malformed (the messages before it are still yielded)."""
    framer = Framer(max_size=MAX_EXTENDED_MESSAGE)
    for msg_type, body in framer.feed(data):
        try:
            msg = decode_message(msg_type, body, ctx)
        except BGPError as e:
            yield {"error": error_to_json(e)}
            return
        fatal = getattr(msg, "error", None)
        if fatal is not None and fatal.action >= Action.AFI_SAFI_DISABLE:
            # an UPDATE error that resets the session: malformed, as a raised one
            yield {"error": error_to_json(fatal)}
            return
        yield message_to_json(msg, HEADER_LEN + len(body))
    err = framer.error
    if err is None and len(framer):
        err = BGPError(
            ERR_HEADER,
            HDR_BAD_LENGTH,
            b"",
            Action.RESET,
            f"incomplete message: {len(framer)} octets after the last complete message",
        )
    if err is not None:
        yield {"error": error_to_json(err)}


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
def decode(hex_words, raw_file, as2, add_path, ebgp):
    """Decode BGP messages and print one JSON object per message.

    The messages (with their 19-octet headers, several may follow each other) are given as
    HEX arguments or, without arguments, read as hex from stdin; whitespace and colons are
    ignored. A malformed message prints {"error": ...} and exits 1.
    """
    families = _families(add_path)
    if raw_file is not None:
        if hex_words:
            raise click.UsageError("give either HEX arguments or --raw FILE, not both")
        data = raw_file.read()
    else:
        text = " ".join(hex_words) if hex_words else sys.stdin.read()
        try:
            data = parse_hex(text)
        except HexError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    if not data:
        click.echo("error: no input", err=True)
        sys.exit(2)
    ctx = Context(as4=not as2, add_path_rx=families, add_path_tx=families, ibgp=not ebgp)
    status = 0
    for obj in decode_stream(data, ctx):
        _emit(obj)
        if "error" in obj and "type" not in obj:
            status = 1
    sys.exit(status)

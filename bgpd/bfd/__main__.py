"""``python -m bgpd.bfd``: run BFD sessions alone and print what happens as JSON lines.

For tests, benchmarks and operators checking a path before turning BFD on for BGP::

    python -m bgpd.bfd --local 10.0.0.1 --peer 10.0.0.2 --min-tx 300ms --multiplier 3
    python -m bgpd.bfd --local 10.0.0.1 --peer 10.0.0.2 --auth-type keyed-sha1 \\
        --auth-key-id 1 --auth-secret s3cret
    python -m bgpd.bfd --sessions sessions.json       # [{"peer":…, "local":…, …}, …]

Every line on stdout is one JSON object with an ``event``: ``started`` (the sessions and
their discriminators), ``state`` (a state change: ``old``, ``new``, ``diag``,
``remote_state``, ``t`` in monotonic seconds), ``snapshot`` (``show bfd`` data, on the
``snapshot`` command, every ``--snapshot-interval`` seconds and at exit) and ``stopped``.
Logs go to stderr. With ``--commands``, lines read on stdin drive it: ``snapshot``,
``down [PEER]``, ``up [PEER]``, ``remove [PEER]``, ``quit``. SIGTERM and SIGINT stop it
(each session sends a last AdminDown).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time

import structlog

from .config import AUTH_TYPES, BfdConfigError, parse, parse_interval
from .manager import SessionKey
from .session import StateChanged
from .transport import BfdService


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _session_specs(args: argparse.Namespace) -> list[dict]:
    """Every session to run, as ``bfd:``-shaped dicts plus ``peer`` and ``local``."""
    base: dict = {
        "min_tx": args.min_tx,
        "min_rx": args.min_rx,
        "multiplier": args.multiplier,
        "idle_tx": args.idle_tx,
        "multihop": args.multihop,
        "passive": args.passive,
    }
    if args.min_ttl is not None:
        base["min_ttl"] = args.min_ttl
    if args.interface:
        base["interface"] = args.interface
    if args.auth_type:
        base["auth"] = {
            "type": args.auth_type,
            "key_id": args.auth_key_id,
            "secret": args.auth_secret,
        }
    specs = []
    if args.peer:
        if not args.local:
            raise SystemExit("--peer needs --local")
        specs += [{**base, "peer": p, "local": args.local} for p in args.peer]
    if args.sessions:
        with open(args.sessions) as f:
            listed = json.load(f)
        if not isinstance(listed, list):
            raise SystemExit(f"{args.sessions}: expected a JSON list of sessions")
        specs += [{**base, **item} for item in listed]
    if not specs:
        raise SystemExit("nothing to run: give --local and --peer, or --sessions FILE")
    return specs


def _key_row(key: SessionKey) -> dict:
    return {
        "peer": key.peer,
        "local": key.local,
        "interface": key.interface,
        "multihop": key.multihop,
    }


async def run(args: argparse.Namespace) -> int:
    specs = _session_specs(args)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_change(key: SessionKey, ev: StateChanged) -> None:
        _emit(
            {
                "event": "state",
                **_key_row(key),
                "old": ev.old.label,
                "new": ev.new.label,
                "diag": ev.diag,
                "remote_state": ev.remote_state.label,
                "remote_diag": ev.remote_diag,
                "failure": ev.is_failure,
                "t": round(ev.at, 6),
                "time": time.time(),
            }
        )

    svc = BfdService(on_state_change=on_change)
    keys: list[SessionKey] = []
    started = []
    for i, spec in enumerate(specs):
        spec = dict(spec)
        peer, local = spec.pop("peer", None), spec.pop("local", None)
        if not peer or not local:
            raise SystemExit(f"session {i}: needs peer and local")
        try:
            cfg = parse(spec)
        except BfdConfigError as e:
            raise SystemExit(f"session {i} ({peer}): {e}") from None
        assert cfg is not None
        key = svc.add_session(
            peer,
            local,
            interface=cfg.interface,
            multihop=cfg.multihop,
            params=cfg.params,
            min_ttl=cfg.min_ttl,
            admin_down=args.admin_down,
        )
        keys.append(key)
        started.append(
            {**_key_row(key), "local_discriminator": svc.manager.session(key).local_disc}
        )
    _emit({"event": "started", "pid": os.getpid(), "t": loop.time(), "sessions": started})

    def snapshot() -> None:
        _emit({"event": "snapshot", "t": loop.time(), **svc.snapshot()})

    def select(arg: str | None) -> list[SessionKey]:
        return [k for k in keys if arg is None or k.peer == arg] if keys else []

    def command(line: str) -> None:
        words = line.split()
        if not words:
            return
        cmd, arg = words[0], (words[1] if len(words) > 1 else None)
        if cmd == "snapshot":
            snapshot()
        elif cmd == "down":
            for k in select(arg):
                svc.admin_down(k)
        elif cmd == "up":
            for k in select(arg):
                svc.admin_up(k)
        elif cmd == "remove":
            for k in select(arg):
                svc.remove_session(k)
                keys.remove(k)
        elif cmd == "quit":
            stop.set()
        else:
            _emit({"event": "error", "error": f"unknown command {cmd!r}"})
            return
        _emit({"event": "done", "command": line.strip()})

    if args.commands:
        buf = bytearray()
        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)

        def readable() -> None:
            try:
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                return
            if not chunk:
                loop.remove_reader(fd)
                return
            buf.extend(chunk)
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                command(line.decode(errors="replace"))

        loop.add_reader(fd, readable)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ticker = None
    if args.snapshot_interval:

        def tick() -> None:
            nonlocal ticker
            snapshot()
            ticker = loop.call_later(args.snapshot_interval, tick)

        ticker = loop.call_later(args.snapshot_interval, tick)
    if args.duration:
        loop.call_later(args.duration, stop.set)
    await stop.wait()
    if ticker is not None:
        ticker.cancel()
    snapshot()
    svc.close()
    _emit({"event": "stopped", "t": loop.time()})
    return 0


def _interval_arg(text: str) -> str:
    try:
        parse_interval(text, "interval", minimum=1)
    except BfdConfigError as e:
        raise argparse.ArgumentTypeError(e.reason) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bgpd.bfd",
        description="Run BFD sessions (RFC 5880/5881/5883) and print state changes as JSON lines.",
    )
    p.add_argument("--local", help="our address")
    p.add_argument("--peer", action="append", help="the peer's address (repeatable)")
    p.add_argument("--sessions", help="JSON list of sessions: {peer, local, and bfd: keys}")
    p.add_argument("--interface", help="single hop: bind to this interface")
    p.add_argument("--multihop", action="store_true", help="RFC 5883, port 4784")
    p.add_argument("--min-ttl", type=int, help="multihop: lowest TTL accepted")
    p.add_argument("--min-tx", type=_interval_arg, default="300ms")
    p.add_argument("--min-rx", type=_interval_arg, default="300ms")
    p.add_argument("--idle-tx", type=_interval_arg, default="1s")
    p.add_argument("--multiplier", type=int, default=3)
    p.add_argument("--passive", action="store_true", help="wait for the peer to speak first")
    p.add_argument("--admin-down", action="store_true", help="start in AdminDown")
    p.add_argument("--auth-type", choices=sorted(AUTH_TYPES))
    p.add_argument("--auth-key-id", type=int, default=1)
    p.add_argument("--auth-secret", default=os.environ.get("BGPD_BFD_SECRET"))
    p.add_argument("--commands", action="store_true", help="read commands on stdin")
    p.add_argument("--snapshot-interval", type=float, default=0.0)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds")
    p.add_argument("--log-level", default="warning")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.auth_type and not args.auth_secret:
        raise SystemExit("--auth-type needs --auth-secret (or BGPD_BFD_SECRET)")
    level = getattr(logging, args.log_level.upper(), logging.WARNING)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every fault test checks afterwards: the RIB equals a clean run's, and nothing leaked.

* :func:`rib_view` is the Loc-RIB as ``show routes`` reports it (every candidate path with its
  attributes, best, multipath and stale flags; no timestamps), :func:`adj_in_view` a
  neighbor's Adj-RIB-In, :func:`peer_view` what a :class:`~hostile_peer.RawPeer` holds from
  the speaker (the UPDATEs it received applied in order), each as a plain comparable value.
* :func:`clean_view` starts a fresh speaker with the same configuration on another port,
  feeds it only the final tables the faulty run ended with, and returns its ``rib_view``:
  "the RIB a clean run gives".
* :class:`Leaks` records the process's file descriptors (sockets among them), its asyncio tasks
  and the speaker's connections before a fault, and :meth:`Leaks.check` waits until they are
  back, failing with the extra descriptors and tasks listed.

The speaker under test runs in the test's own process (so that its tasks and descriptors can
be counted); the peers are ``RawPeer`` connections over real TCP on 127.0.0.x.
"""

import asyncio
import contextlib
import gc
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hostile"))

from hostile_peer import RawPeer, speaker_config, start_speaker, until  # noqa: E402

from bgpd.wire import AttrSet  # noqa: E402
from bgpd.wire import prefix as pfx  # noqa: E402

__all__ = [
    "Leaks",
    "RawPeer",
    "adj_in_view",
    "attrs_tuple",
    "clean_view",
    "peer_view",
    "rib_view",
    "speaker_config",
    "start_speaker",
    "until",
]


# --- views ---------------------------------------------------------------------------------


def rib_view(speaker) -> dict:
    """``{(family, prefix): (path, ...)}`` for every Loc-RIB entry, paths in a fixed order."""
    out = {}
    for entry in speaker.command("show_routes", limit=None)["routes"]:
        paths = tuple(
            sorted(
                tuple(sorted((k, _freeze(v)) for k, v in p.items() if k not in ("kernel",)))
                for p in entry["paths"]
            )
        )
        out[(entry["family"], entry["prefix"])] = paths
    return out


def adj_in_view(speaker, neighbor: str) -> dict:
    """``{(family, prefix): path}`` of one neighbor's Adj-RIB-In (``show routes received``)."""
    out = {}
    for entry in speaker.command("show_routes", neighbor=neighbor, received=True, limit=None)[
        "routes"
    ]:
        for p in entry["paths"]:
            key = (entry["family"], entry["prefix"], p.get("path_id"))
            out[key] = tuple(sorted((k, _freeze(v)) for k, v in p.items()))
    return out


def attrs_tuple(a: AttrSet) -> tuple:
    return (
        a.origin,
        a.as_path,
        a.next_hop,
        a.med,
        a.local_pref,
        tuple(a.communities),
        tuple(a.large_communities),
        a.originator_id,
        tuple(a.cluster_list),
    )


def peer_view(peer: RawPeer) -> dict:
    """``{prefix string: attrs_tuple}`` of what the speaker currently announces to ``peer``."""
    have: dict = {}
    for u in peer.updates():
        for fam, keys in u.unreach():
            for k in keys:
                have.pop(_key_str(fam, k), None)
        for fam, attrs, keys in u.reach():
            t = attrs_tuple(attrs)
            for k in keys:
                have[_key_str(fam, k)] = t
    return have


def _key_str(fam, key) -> str:
    if isinstance(key, tuple):  # ADD-PATH: (path id, prefix)
        return f"{pfx.to_str(key[1], fam[0])}#{key[0]}"
    return pfx.to_str(key, fam[0])


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


# --- a clean run ---------------------------------------------------------------------------


async def clean_view(
    address: str,
    port: int,
    neighbors: list[dict],
    feeds: dict[str, list[bytes]],
    expect: int,
    peer_asn: dict[str, int] | None = None,
    timeout: float = 30.0,
    **top,
) -> dict:
    """The Loc-RIB of a fresh speaker given only ``feeds`` (neighbor address -> UPDATEs).

    ``expect`` is the number of prefixes the Loc-RIB must reach before it is read. Every
    neighbor in ``feeds`` connects as a :class:`RawPeer` with the ASN in ``peer_asn``
    (default: the speaker's, iBGP).
    """
    cfg = speaker_config(address, port, neighbors, **top)
    speaker = await start_speaker(cfg)
    peers = []
    try:
        for local, updates in feeds.items():
            asn = (peer_asn or {}).get(local, cfg.asn)
            p = await RawPeer(local, address, port, asn).connect()
            peers.append(p)
            for u in updates:
                p.send(u)
            await p.drain()
        assert await until(lambda: _loc_count(speaker) >= expect, timeout), (
            f"the clean run reached {_loc_count(speaker)} of {expect} prefixes"
        )
        await asyncio.sleep(0.2)  # anything still in flight (there should be nothing)
        return rib_view(speaker)
    finally:
        for p in peers:
            await p.close()
        await speaker.stop()


def _loc_count(speaker) -> int:
    return sum(len(loc.table) for loc in speaker.rde.rib.loc.values())


# --- leaks -----------------------------------------------------------------------------------


def open_fds() -> dict[int, str]:
    out = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return out


def live_tasks() -> set:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


def speaker_connections(speaker) -> dict[str, int]:
    """Per neighbor, how many connections its session holds (0, 1 or 2 during a collision)."""
    out = {}
    for addr, n in speaker.neighbors.items():
        s = n.session
        out[addr] = sum(1 for c in (s.conn, s.other) if c is not None and not c.closed)
    return out


class Leaks:
    """Descriptors, tasks and connections before a fault; :meth:`check` after it."""

    def __init__(self, speaker) -> None:
        gc.collect()
        self.speaker = speaker
        self.fds = open_fds()
        self.tasks = live_tasks()
        self.neighbors = set(speaker.neighbors)

    def extra(self) -> tuple[dict, set]:
        gc.collect()
        fds = {fd: t for fd, t in open_fds().items() if fd not in self.fds}
        tasks = live_tasks() - self.tasks
        return fds, tasks

    async def check(
        self,
        connections: dict[str, int] | None = None,
        allow_fds: int = 0,
        timeout: float = 15.0,
    ) -> None:
        """Wait until no descriptor or task is left over from the fault.

        ``allow_fds``: descriptors the test itself still holds open since the baseline (e.g.
        its peers' sockets). ``connections``: the expected :func:`speaker_connections`.
        """

        def ok() -> bool:
            fds, tasks = self.extra()
            if len(fds) > allow_fds or tasks:
                return False
            return connections is None or speaker_connections(self.speaker) == connections

        if await until(ok, timeout, step=0.1):
            return
        fds, tasks = self.extra()
        raise AssertionError(
            f"left over after the fault: {len(fds)} descriptors (allowed {allow_fds}): "
            f"{sorted(fds.values())[:20]}; {len(tasks)} tasks: {[repr(t)[:160] for t in tasks][:10]}; "
            f"connections {speaker_connections(self.speaker)} (expected {connections}); "
            f"neighbors now {sorted(set(self.speaker.neighbors) ^ self.neighbors)} differ"
        )

"""``bgpd dump table FILE``: a TABLE_DUMP_V2 file of the Loc-RIB and the Adj-RIBs-In.

The daemon hands over a :class:`TableSnapshot` of plain data; this module owns the layout:

* peer index 0 of the PEER_INDEX_TABLE is the **Loc-RIB** (this speaker: its router ID, the
  address ``0.0.0.0``, its AS, as RFC 9069 names the Loc-RIB in BMP); its entry for a prefix
  holds the best path's attributes, post-policy;
* peer index ``i + 1`` is ``snapshot.peers[i]``; its entries hold that neighbor's
  Adj-RIB-In paths for the prefix (whatever the daemon stores there: bgpd keeps them after
  import policy);
* a prefix gets one RIB_IPV4/IPV6_UNICAST record for its entries without a path
  identifier, and one RIB_*_ADDPATH record (RFC 8050) for those with one.

Encoding is sans-I/O (:class:`TableDumpEncoder`); :func:`write_table_dump` writes a file from
a thread or a script; :func:`dump_table` is the asyncio version that encodes in slices and
writes through a thread, so the event loop is never held for more than one slice.
"""

import asyncio
import ipaddress
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .codec import peer_index_table, rib_entry, rib_record_raw

# Encoded entries kept per (peer index, attribute set, family): a table shares few sets
# among many prefixes, so most entries are a dict lookup. Emptied when it grows past this.
ENTRY_CACHE_MAX = 200_000

# What a route entry of the snapshot is: (peer index into TableSnapshot.peers, AttrSet,
# path id or None). A prefix: (family, prefix key, best AttrSet or None, [entries]).


@dataclass(slots=True)
class DumpPeer:
    """A neighbor as the PEER_INDEX_TABLE lists it."""

    router_id: str  # BGP identifier (text); "0.0.0.0" when never established
    address: str  # the neighbor's address
    asn: int


@dataclass(slots=True)
class TableSnapshot:
    """What the daemon gives :func:`dump_table`.

    ``routes`` yields ``(family, prefix, best, paths)`` per prefix: ``family`` is
    ``(afi, safi)`` (IPv4 or IPv6 unicast), ``prefix`` bgpd's prefix key (wire bytes),
    ``best`` the Loc-RIB's AttrSet for it (None when no path is selected), ``paths`` a
    sequence of ``(peer_index, attrs, path_id)`` with ``peer_index`` into ``peers`` and
    ``path_id`` the ADD-PATH identifier the neighbor sent (None without ADD-PATH).

    ``routes`` may be a generator over the live RIB: :func:`dump_table` consumes it on the
    event loop between slices, so it must tolerate the RIB changing between two ``next()``
    calls (iterate over a list of the prefix keys taken at the start, and look each one up).
    """

    router_id: str
    local_as: int
    peers: Sequence[DumpPeer]
    routes: Iterable
    view_name: str = ""
    timestamp: float = 0.0
    loc_rib: bool = True  # include the Loc-RIB pseudo-peer (index 0)
    stats: dict = field(default_factory=dict)  # filled in: records, prefixes, entries


class TableDumpEncoder:
    """Turns a snapshot into MRT records, one prefix at a time."""

    def __init__(self, snapshot: TableSnapshot) -> None:
        self.snapshot = snapshot
        self.now = snapshot.timestamp
        self.seq = 0
        self.records = 0
        self.prefixes = 0
        self.entries = 0
        self.offset = 1 if snapshot.loc_rib else 0
        self._entries: dict = {}
        # A Loc-RIB route without a next hop (a local origin) is written with our router ID
        # (IPv4) or :: (IPv6) as next hop, as BMP's Loc-RIB shows it (readers expect one).
        self._self_nh = {1: ipaddress.IPv4Address(snapshot.router_id).packed, 2: bytes(16)}

    def peer_table(self) -> bytes:
        s = self.snapshot
        peers = [(p.router_id, p.address, p.asn) for p in s.peers]
        if s.loc_rib:
            peers.insert(0, (s.router_id, "0.0.0.0", s.local_as))
        self.records += 1
        return peer_index_table(s.router_id, s.view_name, peers, self.now)

    def prefix(self, family, prefix: bytes, best, paths) -> bytes:
        """The RIB record(s) of one prefix (b"" when it has no entry at all)."""
        now = self.now
        offset = self.offset
        cache = self._entries
        afi = family[0]
        plain = []
        with_id = []
        if best is not None and offset:
            k = (0, best, afi)
            e = cache.get(k)
            if e is None:
                attrs = best
                if attrs.next_hop is None and afi in self._self_nh:
                    attrs = attrs.replace(next_hop=self._self_nh[afi])
                e = self._cache(k, rib_entry(0, now, None, attrs, family, False))
            plain.append(e)
        for peer, attrs, path_id in paths:
            if attrs is None:
                continue
            if path_id is None:
                k = (peer + offset, attrs, afi)
                e = cache.get(k)
                if e is None:
                    e = self._cache(k, rib_entry(peer + offset, now, None, attrs, family, False))
                plain.append(e)
            else:
                with_id.append(rib_entry(peer + offset, now, path_id, attrs, family, True))
        out = b""
        if plain:
            out = rib_record_raw(self.seq, family, prefix, len(plain), b"".join(plain), now, False)
            self.seq += 1
        if with_id:
            out += rib_record_raw(
                self.seq, family, prefix, len(with_id), b"".join(with_id), now, True
            )
            self.seq += 1
        if out:
            self.prefixes += 1
            self.entries += len(plain) + len(with_id)
            self.records += (1 if plain else 0) + (1 if with_id else 0)
        return out

    def _cache(self, key, entry: bytes) -> bytes:
        if len(self._entries) >= ENTRY_CACHE_MAX:
            self._entries.clear()
        self._entries[key] = entry
        return entry

    def finish(self) -> dict:
        stats = {"records": self.records, "prefixes": self.prefixes, "entries": self.entries}
        self.snapshot.stats.update(stats)
        return stats


def encode_table(snapshot: TableSnapshot) -> bytes:
    """The whole dump in memory (tests, small tables)."""
    enc = TableDumpEncoder(snapshot)
    parts = [enc.peer_table()]
    for family, prefix, best, paths in snapshot.routes:
        parts.append(enc.prefix(family, prefix, best, paths))
    enc.finish()
    return b"".join(parts)


def write_table_dump(path: str, snapshot: TableSnapshot, chunk: int = 1 << 20) -> dict:
    """Write the dump to ``path`` (atomically: a temporary name, then renamed); blocking.

    Use from a thread with a snapshot that does not change under it, or from a script.
    Returns ``{"records", "prefixes", "entries", "bytes"}``.
    """
    enc = TableDumpEncoder(snapshot)
    tmp = f"{path}.tmp{os.getpid()}"
    size = 0
    with _open(tmp) as fh:
        buf = [enc.peer_table()]
        n = len(buf[0])
        for family, prefix, best, paths in snapshot.routes:
            rec = enc.prefix(family, prefix, best, paths)
            if rec:
                buf.append(rec)
                n += len(rec)
                if n >= chunk:
                    fh.write(b"".join(buf))
                    size += n
                    buf, n = [], 0
        fh.write(b"".join(buf))
        size += n
    os.replace(tmp, path)
    stats = enc.finish()
    stats["bytes"] = size
    return stats


async def dump_table(
    path: str,
    snapshot: TableSnapshot,
    *,
    slice_prefixes: int = 2000,
    slice_seconds: float = 0.004,
    chunk: int = 1 << 20,
) -> dict:
    """Write the dump from the event loop without holding it: at most ``slice_prefixes``
    prefixes and about ``slice_seconds`` of encoding per loop turn (a request to the daemon
    takes several turns: shorter slices keep it answering), and the file is written by a
    worker thread (``chunk`` octets at a time). The file appears under its name only when
    complete. Returns the same counts as :func:`write_table_dump`.
    """
    loop = asyncio.get_running_loop()
    enc = TableDumpEncoder(snapshot)
    tmp = f"{path}.tmp{os.getpid()}"
    fh = await loop.run_in_executor(None, _open, tmp)
    size = 0
    pending: asyncio.Future | None = None
    try:
        buf = [enc.peer_table()]
        n = len(buf[0])
        it = iter(snapshot.routes)
        done = False
        clock = time.monotonic
        while not done:
            deadline = clock() + slice_seconds
            left = slice_prefixes
            while left > 0 and not done:
                for _ in range(min(left, 64)):
                    try:
                        family, prefix, best, paths = next(it)
                    except StopIteration:
                        done = True
                        break
                    rec = enc.prefix(family, prefix, best, paths)
                    if rec:
                        buf.append(rec)
                        n += len(rec)
                left -= 64
                if clock() >= deadline:
                    break
            if n >= chunk or done:
                data = b"".join(buf)
                buf, n = [], 0
                if pending is not None:
                    await pending  # at most one write in flight: memory stays ~2 chunks
                pending = loop.run_in_executor(None, fh.write, data)
                size += len(data)
            await asyncio.sleep(0)
        if pending is not None:
            await pending
        await loop.run_in_executor(None, fh.close)
        await loop.run_in_executor(None, os.replace, tmp, path)
    except BaseException:
        fh.close()
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    stats = enc.finish()
    stats["bytes"] = size
    return stats


def _open(path: str):
    if path.endswith(".gz") or ".gz.tmp" in path:
        import gzip

        return gzip.open(path, "wb", compresslevel=5)
    if path.endswith(".bz2") or ".bz2.tmp" in path:
        import bz2

        return bz2.open(path, "wb")
    return open(path, "wb")  # noqa: SIM115 - closed by the callers


__all__ = [
    "DumpPeer",
    "TableDumpEncoder",
    "TableSnapshot",
    "dump_table",
    "encode_table",
    "write_table_dump",
]

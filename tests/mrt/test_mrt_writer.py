"""The update log's writer thread: timed flushes, a stalled disk, write errors.

"Never blocks" is checked against a disk that does not move at all (a FIFO nobody reads):
a call that waited for the disk would never return, so the bound asserted is generous.
"""

import asyncio
import os
import threading
import time

from bgpd.mrt import MrtPeer, UpdateLogWriter
from bgpd.wire.messages import KEEPALIVE_BYTES

PEER = MrtPeer(65001, 65000, "192.0.2.1", "192.0.2.254")
RECORD = len(PEER.message(KEEPALIVE_BYTES, 0.0))


async def test_records_reach_the_file_after_the_flush_interval(tmp_path):
    w = UpdateLogWriter(str(tmp_path / "u.mrt"), 0, flush_interval=0.05)
    try:
        w.message(PEER, KEEPALIVE_BYTES)
        w.message(PEER, KEEPALIVE_BYTES, sent=True)
        path = tmp_path / "u.mrt"
        for _ in range(100):
            await asyncio.sleep(0.02)
            if path.exists() and path.stat().st_size == 2 * RECORD:
                break
        assert path.stat().st_size == 2 * RECORD  # written without close() or sync()
    finally:
        w.close()


async def test_a_stalled_disk_never_blocks_the_caller_and_drops_are_counted(tmp_path):
    fifo = tmp_path / "stall.mrt"
    os.mkfifo(fifo)  # opening it for writing blocks until a reader comes: a dead disk
    w = UpdateLogWriter(str(fifo), 0, flush_bytes=4096, max_pending=64 * 1024)
    n = 20_000  # ~1.3 MB of records against a 64 KiB bound
    worst = 0.0
    t0 = time.perf_counter()
    for _ in range(n):
        a = time.perf_counter()
        w.message(PEER, KEEPALIVE_BYTES)
        worst = max(worst, time.perf_counter() - a)
    elapsed = time.perf_counter() - t0
    s = w.stats()
    assert s["records"] == n
    assert s["dropped_records"] > 0
    assert s["dropped_bytes"] >= n * RECORD - 64 * 1024 - 4096
    assert w.pending <= 64 * 1024 + 4096  # memory held stays within the bound
    assert worst < 0.05 and elapsed < 10  # the caller never waited for the disk

    # a reader appears: what was kept gets written, nothing more is lost
    got = bytearray()

    def drain():
        with open(fifo, "rb") as fh:
            while chunk := fh.read(65536):
                got.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    w.message(PEER, KEEPALIVE_BYTES)
    await asyncio.sleep(0)
    w.close()
    reader.join(10)
    kept = n + 1 - w.stats()["dropped_records"]
    assert len(got) == kept * RECORD
    # whole records only: each is BGP4MP_ET / MESSAGE_AS4 carrying the KEEPALIVE
    for i in range(0, len(got), RECORD):
        rec = bytes(got[i : i + RECORD])
        assert rec[4:8] == b"\x00\x11\x00\x04" and rec.endswith(KEEPALIVE_BYTES)


async def test_write_errors_are_counted_not_raised(tmp_path):
    (tmp_path / "adir.mrt").mkdir()  # opening a directory for writing fails
    w = UpdateLogWriter(str(tmp_path / "adir.mrt"), 0, flush_bytes=1)
    w.message(PEER, KEEPALIVE_BYTES)
    w.message(PEER, KEEPALIVE_BYTES)
    assert w.sync()
    s = w.stats()
    w.close()
    assert s["errors"] == 2 and s["failed_records"] == 2
    assert "adir.mrt" in s["last_error"]


async def test_closed_writer_ignores_late_messages(tmp_path):
    w = UpdateLogWriter(str(tmp_path / "u.mrt"), 0)
    w.message(PEER, KEEPALIVE_BYTES)
    w.close()
    w.message(PEER, KEEPALIVE_BYTES)
    w.state_change(PEER, "Idle", "Connect")
    assert (tmp_path / "u.mrt").stat().st_size == RECORD


async def test_files_are_created_in_missing_directories_and_compressed(tmp_path):
    import gzip

    w = UpdateLogWriter(str(tmp_path / "%Y" / "u.%H%M.mrt.gz"), 900)
    w.messages(PEER, [KEEPALIVE_BYTES] * 3)
    w.close()
    (path,) = w.files
    assert path.startswith(str(tmp_path))
    with gzip.open(path) as fh:
        assert len(fh.read()) == 3 * RECORD


async def test_from_config_and_messages_given_as_type_and_body(tmp_path):
    from bgpd.mrt.config import parse_mrt

    cfg = parse_mrt({"updates": str(tmp_path / "u.%Y%m%d.%H%M"), "rotate": "15m", "buffer": "1MiB"})
    w = UpdateLogWriter.from_config(cfg)
    assert (w.core.rotate, w.max_pending) == (900.0, 1 << 20)
    w.body(PEER, 4, b"", now=1_700_000_000.5)  # a KEEPALIVE as the framer gives it
    w.close()
    (path,) = w.files
    with open(path, "rb") as fh:
        assert fh.read() == PEER.message(KEEPALIVE_BYTES, 1_700_000_000.5)

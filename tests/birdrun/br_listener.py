"""A BGP neighbor that records what it is sent, for the stop tests (test_br_stop.py).

    ip netns exec NS python br_listener.py ADDRESS ASN OUT.jsonl

Listens on ADDRESS port 179 and takes every connection (one after another, as the daemon
under test stops and starts): answers the OPEN with its own (graceful restart able,
IPv4 unicast, four-octet AS, hold time 90), a KEEPALIVE and an IPv4 End-of-RIB, sends a
KEEPALIVE every 20 s, and writes one JSON line per event to OUT:

* ``{"ev": "open", "hex": ...}``: the body of the OPEN received;
* ``{"ev": "notification", "code": C, "subcode": S, "data": HEX}``;
* ``{"ev": "eof"}``: the connection closed (after a NOTIFICATION or without one);

each with ``"t"`` (``time.time()``) and ``"conn"`` (the connection's number). It never
sends a NOTIFICATION and announces nothing: what it records is the daemon's doing alone.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time

HOLD = 90


def message(kind: int, body: bytes) -> bytes:
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body


def open_message(address: str, asn: int) -> bytes:
    def cap(code: int, value: bytes) -> bytes:
        return bytes((code, len(value))) + value

    caps = cap(1, b"\x00\x01\x00\x01")  # IPv4 unicast
    caps += cap(64, struct.pack("!H", 120) + b"\x00\x01\x01\x80")  # GR, forwarding kept
    caps += cap(65, struct.pack("!I", asn))
    params = bytes((2, len(caps))) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH4sB", 4, my_as, HOLD, socket.inet_aton(address), len(params))
    return message(1, body + params)


class Recorder:
    def __init__(self, path: str) -> None:
        self.f = open(path, "a", buffering=1)  # noqa: SIM115 - the process's life
        self.lock = threading.Lock()

    def write(self, conn: int, **event) -> None:
        with self.lock:
            self.f.write(json.dumps({"t": time.time(), "conn": conn, **event}) + "\n")


def serve(c: socket.socket, n: int, hello: bytes, out: Recorder) -> None:
    alive = threading.Event()

    def keepalives() -> None:
        while not alive.wait(20):
            try:
                c.sendall(message(4, b""))
            except OSError:
                return

    threading.Thread(target=keepalives, daemon=True).start()
    try:
        c.sendall(hello)
        buf = b""
        while True:
            data = c.recv(65536)
            if not data:
                break
            buf += data
            while len(buf) >= 19:
                length, kind = struct.unpack("!HB", buf[16:19])
                if len(buf) < length:
                    break
                body, buf = buf[19:length], buf[length:]
                if kind == 1:
                    out.write(n, ev="open", hex=body.hex())
                    # KEEPALIVE, then End-of-RIB (IPv4 unicast: an empty UPDATE)
                    c.sendall(message(4, b"") + message(2, b"\x00\x00\x00\x00"))
                elif kind == 3:
                    out.write(n, ev="notification", code=body[0], subcode=body[1],
                              data=body[2:].hex())  # fmt: skip
    except OSError as e:
        out.write(n, ev="error", error=str(e))
    finally:
        alive.set()
        out.write(n, ev="eof")
        c.close()


def main() -> None:
    address, asn, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    out = Recorder(path)
    hello = open_message(address, asn)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 179))
    s.listen(4)
    out.write(0, ev="listening")
    n = 0
    while True:
        c, _peer = s.accept()
        n += 1
        threading.Thread(target=serve, args=(c, n, hello, out), daemon=True).start()


if __name__ == "__main__":
    main()

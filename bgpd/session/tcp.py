"""Socket options for BGP transports: TCP MD5 (RFC 2385), GTSM (RFC 5082), TTL, FIONREAD."""

import fcntl
import ipaddress
import socket
import struct
import termios

TCP_MD5SIG = 14
TCP_MD5SIG_EXT = 32
TCP_MD5SIG_FLAG_PREFIX = 1
TCP_MD5SIG_MAXKEYLEN = 80
IP_MINTTL = 21
IPV6_MINHOPCOUNT = 73


class SocketOptionError(OSError):
    pass


def _sockaddr_storage(address: str) -> bytes:
    """A ``struct sockaddr_storage`` (128 octets) holding ``address`` (port 0)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        raw = struct.pack("=H", socket.AF_INET) + b"\x00\x00" + ip.packed
    else:
        raw = (
            struct.pack("=H", socket.AF_INET6) + b"\x00\x00" + b"\x00" * 4 + ip.packed + b"\x00" * 4
        )
    return raw.ljust(128, b"\x00")


def md5sig(address: str, key: str | bytes | None, prefixlen: int | None = None) -> bytes:
    """``struct tcp_md5sig``: address, flags, prefix length, key length, ifindex, key."""
    raw = key.encode() if isinstance(key, str) else (key or b"")
    if len(raw) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError("TCP MD5 key longer than 80 octets")
    flags = TCP_MD5SIG_FLAG_PREFIX if prefixlen is not None else 0
    return (
        _sockaddr_storage(address)
        + struct.pack("=BBHI", flags, prefixlen or 0, len(raw), 0)
        + raw.ljust(TCP_MD5SIG_MAXKEYLEN, b"\x00")
    )


def set_md5(
    sock: socket.socket, address: str, key: str | None, prefixlen: int | None = None
) -> None:
    """Install (or, with an empty key, remove) the MD5 key for a peer address or prefix.

    On an IPv6 socket an IPv4 peer is keyed by its v4-mapped address.
    """
    if sock.family == socket.AF_INET6 and ipaddress.ip_address(address).version == 4:
        address = f"::ffff:{address}"
        if prefixlen is not None:
            prefixlen += 96
    opt = TCP_MD5SIG_EXT if prefixlen is not None else TCP_MD5SIG
    try:
        sock.setsockopt(socket.IPPROTO_TCP, opt, md5sig(address, key, prefixlen))
    except OSError as e:
        raise SocketOptionError(e.errno, f"TCP MD5 for {address}: {e.strerror}") from e


def set_ttl(sock: socket.socket, ttl: int, min_ttl: int | None = None) -> None:
    """Outgoing TTL (hop limit) and, for GTSM, the minimum TTL accepted (RFC 5082)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)


def ttl_for(ebgp: bool, ttl_security: int | None, multihop: int | None) -> tuple[int, int | None]:
    """(TTL to send, minimum TTL to accept) for a neighbor's settings."""
    if ttl_security:
        return 255, 256 - ttl_security
    if multihop:
        return multihop, None
    return (1 if ebgp else 64), None


def unread_bytes(sock: socket.socket | None) -> int:
    """Bytes waiting in the kernel receive buffer (FIONREAD); 0 when unknown."""
    if sock is None:
        return 0
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\x00\x00\x00\x00")
        return struct.unpack("=i", buf)[0]
    except OSError:
        return 0


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET

"""BIRD 1.6's lexer (conf/cf-lex.l), the part a CLI command line can use.

Tokens: keywords (:data:`KEYWORDS`, case-sensitive, lowercase), symbols (other names, or
``'quoted'``), numbers (decimal or ``0x`` hex, 32-bit), IPv4 addresses, IPv6 addresses (bird6
only), ``"strings"``, the operators ``!= !~ <= >= && || [= =] ..`` and single characters.
``#`` starts a comment to the end of the line. Errors are BIRD's texts (``Unknown
character``, ``Number out of range`` ...), raised as :class:`CliError` with code 9001.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass


class CliError(Exception):
    """A command BIRD refuses: its reply is the single final line ``code text``."""

    def __init__(self, text: str, code: int = 9001) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


# Every CF_KEYWORDS word of Calico's BIRD fork (nest, conf, filter, sysdep/unix and the
# protocols) and every word of a CF_CLI command (gen_keywords.m4 makes them keywords too): a
# keyword is never a symbol, so a protocol cannot be named after one.
KEYWORDS = frozenset(
    """
accept action add address administrative advertise after algorithm all allow always area
as as4 auth authentication autonomous aware babel babel_metric base bcast bfd bgp
bgp_aggregator bgp_atomic_aggr bgp_cluster_list bgp_community bgp_ext_community
bgp_large_community bgp_local_pref bgp_med bgp_next_hop bgp_origin bgp_originator_id bgp_path
bgpmask bgppath blackhole block bool broadcast buffer bug capabilities case cast cease change
check class client clist cluster collision commands communities config configuration confirm
connect connection contains cost cost2 count cryptographic current dead debug deconfigured
default define defined delay delete description dest deterministic dev device direct disable
disabled dnssl domain drop dscp dual dump ec eclist ecmp eligible else enable entries error
events export extended external false fatal filename filter filtered filters first flush for
forget from function garbage gateway generate generic global graceful gw hello hidden high
hit hmac hold hop horizon id idle if ifindex ifname ignore igp igp_metric import in infinity
info instance int interface interfaces interpret interval ip ipv4 iso keep keepalive kernel
keyed krt_advmss krt_cwnd krt_feature_allfrag krt_feature_ecn krt_hoplimit krt_initcwnd
krt_initrwnd krt_lock_advmss krt_lock_cwnd krt_lock_hoplimit krt_lock_mtu krt_lock_reordering
krt_lock_rto_min krt_lock_rtt krt_lock_rttvar krt_lock_sstresh krt_lock_window krt_metric
krt_mtu krt_prefsrc krt_quickack krt_realm krt_reordering krt_rto_min krt_rtt krt_rttvar
krt_scope krt_source krt_sstresh krt_tunnel krt_window large last last_nonaggregated latency
lc lclist learn len length lifetime limit linger link listen lived lladdr local log long low
lsa lsadb lsid managed mask match max md5 med medium memory merge messages meticulous metric
min missing mode mrt mrtdump ms mtu mult multicast multihop multipath multiplier name nbma
neighbor neighbors net netmask networks next no noexport nonbroadcast none normal ns nssa of
off old older on onlink only opaque ospf ospf_metric1 ospf_metric2 ospf_router_id ospf_tag
other out packets pair passive password passwords path paths peer period persist pipe
plaintext pointomultipoint pointopoint poison poll port preexport prefer preference preferred
prefix prepend primary print printn priority prohibit propagate proto protocol protocols ptmp
ptp quad quitbird ra ra_lifetime ra_preference radv rdnss reachable real receive recursive
refresh reject rejected reload remote reset resources restart restrict retrans retransmit
retry return reverse rfc1583compat rip rip_metric rip_tag ro roa roa_check route router routes
rr rs rt rx rxcost s scan scope secondary security self sensitive set setkey sha1 sha256 sha384
sha512 short show shutdown simple skip soft sorted source split stability stale start startup
states static stats stderr strict string stub stubnet summary suppression syslog table tag
template then tick time timeformat timeout timer to trace translator transmit transparent
trigger true ttl tx type undo unknown unreachable unset update us v6only valid version via
virtual vrf wait warn warning watchdog weight wired wireless yes zero
attributes configure down echo empty eval sessions sockets state status symbols topology where
""".split()  # noqa: SIM905
)

# CF_ENUM constants (nest/config.Y, proto/bgp/config.Y): name -> (enum type, value)
ENUMS: dict[str, tuple[str, int]] = {}
for _prefix, _names in (
    (
        "RTS_",
        "DUMMY STATIC INHERIT DEVICE STATIC_DEVICE REDIRECT RIP OSPF OSPF_IA OSPF_EXT1 "
        "OSPF_EXT2 BGP PIPE BABEL",
    ),
    ("SCOPE_", "HOST LINK SITE ORGANIZATION UNIVERSE UNDEFINED"),
    ("RTC_", "UNICAST BROADCAST MULTICAST ANYCAST"),
    ("RTD_", "ROUTER DEVICE BLACKHOLE UNREACHABLE PROHIBIT MULTIPATH"),
    ("ROA_", "UNKNOWN VALID INVALID"),
    ("ORIGIN_", "IGP EGP INCOMPLETE"),
    ("RA_PREF_", "LOW MEDIUM HIGH"),
):
    for _i, _n in enumerate(_names.split()):
        ENUMS[_prefix + _n] = (_prefix, _i)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # KW SYM ENUM NUM IP TEXT OP
    value: object
    text: str

    def is_kw(self, *words: str) -> bool:
        return self.kind == "KW" and self.value in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == "OP" and self.value in ops


_TWO_CHAR = {"!=", "!~", "<=", ">=", "&&", "||", "[=", "=]", ".."}
_ONE_CHAR = set("={}:;,.()+*/%<>~[]?!|-")
_IPV4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6 = re.compile(
    r"(?:[0-9a-fA-F]*::|(?:[0-9a-fA-F]*:){3,})(?:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|[0-9a-fA-F]*)"
)
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUM = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|'[A-Za-z_0-9\-.:]*'")


def _num(text: str, base: int) -> int:
    v = int(text, base)
    if v > 0xFFFFFFFF:
        raise CliError("Number out of range")
    return v


def tokenize(line: str, ipv6: bool = False) -> list[Token]:
    """Split a command line into tokens (flex's longest match, first rule on ties)."""
    toks: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c in " \t\n":
            i += 1
            continue
        if c == "#":
            break
        if line.startswith("/*", i):
            end = line.find("*/", i + 2)
            if end < 0:
                break  # "Unterminated comment" needs EOF in a file; a CLI line just ends
            i = end + 2
            continue
        cands: list[tuple[int, str]] = []  # (length, rule), first rule wins on ties
        for rule, rx in (("IP4", _IPV4), ("IP6", _IPV6), ("HEX", _HEX), ("NUM", _NUM)):
            m = rx.match(line, i)
            if m:
                cands.append((m.end() - i, rule))
        m = _NAME.match(line, i)
        if m:
            cands.append((m.end() - i, "NAME"))
        if line.startswith(tuple(_TWO_CHAR), i):
            cands.append((2, "OP2"))
        if c in _ONE_CHAR:
            cands.append((1, "OP1"))
        if c == '"':
            end = line.find('"', i + 1)
            if end >= 0:
                cands.append((end + 1 - i, "TEXT"))
        if not cands:
            raise CliError("Unknown character")
        length = max(cands)[0]
        rule = next(r for ln, r in cands if ln == length)
        text = line[i : i + length]
        i += length
        if rule == "IP4":
            try:
                addr = ipaddress.IPv4Address(text)
            except ValueError:
                raise CliError(f"Invalid IPv4 address {text}")
            # bird6 lexes a dotted quad as a router id, not an address
            toks.append(Token("RTRID" if ipv6 else "IP", addr, text))
        elif rule == "IP6":
            if not ipv6:
                raise CliError("This is an IPv4 router, therefore IPv6 addresses are not supported")
            try:
                toks.append(Token("IP", ipaddress.IPv6Address(text), text))
            except ValueError:
                raise CliError(f"Invalid IPv6 address {text}")
        elif rule == "HEX":
            toks.append(Token("NUM", _num(text[2:], 16), text))
        elif rule == "NUM":
            toks.append(Token("NUM", _num(text, 10), text))
        elif rule == "NAME":
            name = text[1:-1] if text.startswith("'") else text
            if name in KEYWORDS:
                toks.append(Token("KW", name, text))
            elif name in ENUMS:
                toks.append(Token("ENUM", ENUMS[name], text))
            else:
                toks.append(Token("SYM", name, text))
        elif rule == "TEXT":
            toks.append(Token("TEXT", text[1:-1], text))
        else:
            toks.append(Token("OP", text, text))
    return toks

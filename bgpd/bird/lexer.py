"""BIRD 1.6's configuration lexer, token for token and column for column.

What it reproduces (conf/cf-lex.l of BIRD 1.6.8 and Calico's fork):

* flex's rule: the longest match wins, the earlier rule on a tie;
* ``include "file";`` recognised only at the start of a line (the start of a file counts),
  spliced in by the lexer, the path relative to the including file's directory (C's
  ``dirname``: ``.`` for a bare name), globs expanded in sorted order (no match: nothing),
  at most 8 files deep;
* the family: in ``bird.cfg`` (IPv4) any IPv6 literal is an error; in ``bird6.cfg`` a dotted
  quad is a router-ID token (RTRID), valid only where the grammar wants one;
* numbers fit in 32 bits; quoted symbols ``'a-b.c:d'``, at most 64 characters like every symbol;
  keywords are looked up after the quotes are stripped;
* ``#`` comments, ``/* */`` comments (not nested), strings without escapes on one line;
* error positions as ``cf_error`` computes them: the line of the current file and the column
  where the last matched text starts. At the end of the main file BIRD's lexer sets the line to
  1, so an error found there reads ``file:1:col``.

A token carries the position an error would be reported at if the parser raised it with this
token as the last one read.
"""

import glob
import os
import re

from . import keywords as kw
from .errors import BirdError
from .values import Ip

MAX_INCLUDE_DEPTH = 8
SYM_MAX_LEN = 64

# token kinds besides keywords (the keyword's own text) and punctuation (the characters)
NUM = "NUM"
IPA = "IPA"
RTRID = "RTRID"
SYM = "SYM"
TEXT = "TEXT"
ENUM = "ENUM"
ELSECOL = "ELSECOL"
END = "END"

_INCLUDE = re.compile(r'[ \t]*include[ \t]*".*"[ \t]*;')
_IP4 = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IP6_TAIL = r"(?:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|[0-9a-fA-F]*)"
_IP6_A = re.compile(r"[0-9a-fA-F]*::" + _IP6_TAIL)
_IP6_B = re.compile(r"(?:[0-9a-fA-F]*:){3,}" + _IP6_TAIL)
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_DEC = re.compile(r"[0-9]+")
_ELSECOL = re.compile(r"else:")
_SYM = re.compile(r"[a-zA-Z_][a-zA-Z_0-9]*|'[a-zA-Z_0-9.:-]*'")
_WHITE = re.compile(r"[ \t]+")
_STRING = re.compile(r'"[^"\n]*"')
_UNTERMINATED = re.compile(r'"[^"\n]*\n')
_SINGLE = frozenset("={}:;,.()+*/%<>~[]?!|-")
_DOUBLE = {"!=": "!=", "!~": "!~", "<=": "<=", ">=": ">=", "&&": "&&", "||": "||"}
_DOUBLE.update({"[=": "[=", "=]": "=]", "..": ".."})


class Token:
    __slots__ = ("kind", "value", "file", "line", "col")

    def __init__(self, kind: str, value, file: str, line: int, col: int) -> None:
        self.kind = kind
        self.value = value
        self.file = file
        self.line = line
        self.col = col

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.value!r}, {self.file}:{self.line}:{self.col})"


class _File:
    """One entry of BIRD's include stack (``struct include_file_stack``)."""

    __slots__ = ("name", "text", "pos", "line", "chno", "toklen", "depth", "up", "at_bol")

    def __init__(self, name: str, depth: int, up: "_File | None") -> None:
        self.name = name
        self.text: str | None = None  # read when the file becomes current
        self.pos = 0
        self.line = 1
        self.chno = 0
        self.toklen = 0
        self.depth = depth
        self.up = up
        self.at_bol = True


def ip6_parse(text: str) -> int | None:
    """BIRD's ``ip6_pton``: the address as an int, or None when it is not valid."""
    a = text
    if a.startswith(":"):
        if not a.startswith("::"):
            return None
        a = a[1:]
    words: list[int] = []
    hfil = -1
    k = 0
    n = len(a)
    while k < n:
        if a[k] == ":":
            if hfil >= 0:
                return None
            hfil = len(words)
            k += 1
            continue
        start = k
        value = digits = 0
        while k < n and a[k] in "0123456789abcdefABCDEF":
            value = (value << 4) + int(a[k], 16)
            digits += 1
            k += 1
            if value >= 0x10000 or digits > 4:
                return None
        if k < n and a[k] == ":" and k + 1 < n:
            k += 1
        elif k < n and a[k] == "." and (len(words) == 6 or (len(words) < 6 and hfil >= 0)):
            v4 = ip4_parse(a[start:])
            if v4 is None:
                return None
            words.append(v4 >> 16)
            words.append(v4 & 0xFFFF)
            break
        elif k < n:
            return None
        if len(words) >= 8:
            return None
        words.append(value)
    if hfil >= 0:
        fill = 8 - len(words)
        words[hfil:hfil] = [0] * fill
    if len(words) != 8:
        words += [0] * (8 - len(words))  # BIRD leaves the rest as it was: zero here
    result = 0
    for w in words[:8]:
        result = (result << 16) | w
    return result


def ip4_parse(text: str) -> int | None:
    """BIRD's ``ip4_pton`` on a dotted quad of digits: each part at most 255."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    value = 0
    for p in parts:
        n = int(p)
        if n > 255:
            return None
        value = (value << 8) | n
    return value


class Lexer:
    """Tokens of a config file and the files it includes, read on demand."""

    def __init__(self, path: str, ipv6: bool = False, fork: bool = True) -> None:
        self.ipv6 = ipv6
        self.keywords = set(kw.KEYWORDS_V4)
        if ipv6:
            self.keywords |= kw.KEYWORDS_V6_ONLY
        if not fork:
            self.keywords -= kw.FORK_KEYWORDS
        self.enums = {n: v for n, v in kw.ENUMS.items() if ipv6 or n not in kw.ENUMS_V6_ONLY}
        self.head = _File(path, 1, None)
        self.cur = self.head
        self.state = "INITIAL"  # or COMMENT, CCOMM
        self.files: list[str] = []  # every file read, in order (for tests and reloads)
        self._stack: list[_File] = []  # where to go on at the end of the current file
        self._open(self.head, at_start=True)

    # --- errors ----------------------------------------------------------------------------

    def error(self, message: str) -> BirdError:
        """The error at the last matched text, as ``cf_error`` reports it."""
        f = self.cur
        return BirdError(f.name, f.line, f.chno - f.toklen + 1, message)

    # --- files -----------------------------------------------------------------------------

    def _open(self, f: _File, at_start: bool = False) -> None:
        try:
            with open(f.name, "rb") as fh:
                data = fh.read()
        except IsADirectoryError:
            data = None
            err = "Read error"
        except OSError as e:
            data = None
            err = os.strerror(e.errno) if e.errno else str(e)
        if data is None:
            if at_start:
                raise BirdError(f.name, 0, 0, f"Unable to open configuration file {f.name}: {err}")
            if err == "Read error":
                # open(2) works on a directory; the read that follows fails
                self.cur = f
                f.text = ""
                raise self.error("Read error")
            self.cur = f.up
            raise self.error(f"Unable to open included file {f.name}: {err}")
        f.text = data.decode("latin-1")  # bytes as characters: columns count bytes
        self.files.append(f.name)
        self.cur = f

    def _include(self, arg: str) -> None:
        base = self.cur
        depth = base.depth + 1
        if depth > MAX_INCLUDE_DEPTH:
            raise self.error("Max include depth reached")
        if not arg.startswith("/"):
            d = os.path.dirname(base.name) or "."
            patt = f"{d}/{arg}"
        else:
            patt = arg
        if not any(c in arg for c in "?*["):
            f = _File(patt, depth, base)
            self._stack.append(base)
            self._open(f)
            return
        try:
            names = sorted(glob.glob(patt))
        except OSError as e:  # pragma: no cover - glob swallows most errors
            raise self.error(f"Unable to match pattern {patt}: {os.strerror(e.errno)}")
        files = [n for n in names if not os.path.isdir(n)]
        if not files:
            return
        self._stack.append(base)
        pending = [_File(n, depth, base) for n in files]
        # the first is entered now, the rest when it ends
        for f in reversed(pending[1:]):
            self._stack.append(f)
        self._open(pending[0])

    def _eof(self) -> bool:
        """End of the current file: True at the end of the main file (BIRD's check_eof)."""
        if self.cur is self.head:
            self.head.line = 1  # BIRD's check_eof does this ("Why this?")
            return True
        nxt = self._stack.pop()
        if nxt.text is None:
            self._open(nxt)
        else:
            self.cur = nxt
        return False

    # --- scanning --------------------------------------------------------------------------

    def _advance(self, f: _File, text: str) -> None:
        """flex's YY_RULE_SETUP and BIRD's YY_USER_ACTION for a match of ``text``."""
        n = len(text)
        f.pos += n
        f.chno += n
        f.toklen = n
        f.at_bol = text.endswith("\n")

    def _newline(self, f: _File) -> None:
        f.line += 1
        f.chno = 0

    def next(self) -> Token:
        while True:
            f = self.cur
            text = f.text
            pos = f.pos
            if pos >= len(text):
                if self.state == "CCOMM":
                    raise self.error("Unterminated comment")
                if self._eof():
                    h = self.head
                    return Token(END, None, h.name, 1, h.chno - h.toklen + 1)
                continue
            c = text[pos]
            if self.state == "COMMENT":
                self._advance(f, c)
                if c == "\n":
                    self._newline(f)
                    self.state = "INITIAL"
                continue
            if self.state == "CCOMM":
                two = text[pos : pos + 2]
                if two == "*/":
                    self._advance(f, two)
                    self.state = "INITIAL"
                elif two == "/*":
                    self._advance(f, two)
                    raise self.error("Comment nesting not supported")
                else:
                    self._advance(f, c)
                    if c == "\n":
                        self._newline(f)
                continue
            tok = self._token(f, text, pos, c)
            if tok is not None:
                return tok

    def _tok(self, f: _File, kind: str, value, text: str) -> Token:
        self._advance(f, text)
        return Token(kind, value, f.name, f.line, f.chno - f.toklen + 1)

    def _token(self, f: _File, text: str, pos: int, c: str) -> "Token | None":
        if f.at_bol and (c == "i" or c == " " or c == "\t"):
            m = _INCLUDE.match(text, pos)
            if m:
                whole = m.group(0)
                self._advance(f, whole)
                start = whole.index('"') + 1
                end = whole.index('"', start)
                if start == end:
                    raise self.error("Include with empty argument")
                self._include(whole[start:end])
                return None
        if c == " " or c == "\t":
            self._advance(f, _WHITE.match(text, pos).group(0))
            return None
        if c == "\n":
            self._advance(f, c)
            self._newline(f)
            return None
        if c == "#":
            self._advance(f, c)
            self.state = "COMMENT"
            return None
        two = text[pos : pos + 2]
        if two == "/*":
            self._advance(f, two)
            self.state = "CCOMM"
            return None
        if c.isdigit() or c in "abcdefABCDEF:" or c == "_" or c.isalpha() or c == "'":
            tok = self._word(f, text, pos, c)
            if tok is not None:
                return tok
        if two in _DOUBLE:
            return self._tok(f, _DOUBLE[two], None, two)
        if c in _SINGLE:
            return self._tok(f, c, None, c)
        if c == '"':
            m = _STRING.match(text, pos)
            if m:
                s = m.group(0)
                return self._tok(f, TEXT, s[1:-1], s)
            m = _UNTERMINATED.match(text, pos)
            if m:
                self._advance(f, m.group(0))
                raise self.error("Unterminated string")
        self._advance(f, c)
        raise self.error("Unknown character")

    def _word(self, f: _File, text: str, pos: int, c: str) -> "Token | None":
        """Numbers, addresses, symbols and keywords: the longest of the rules that match."""
        best = ""
        rule = ""
        for name, rx in (
            ("ip4", _IP4),
            ("ip6", _IP6_A),
            ("ip6", _IP6_B),
            ("hex", _HEX),
            ("dec", _DEC),
            ("elsecol", _ELSECOL),
            ("sym", _SYM),
        ):
            m = rx.match(text, pos)
            if m and len(m.group(0)) > len(best):
                best, rule = m.group(0), name
        if not best or (c == ":" and rule != "ip6"):
            return None  # a lone ':' or '.' is punctuation
        if rule == "ip4":
            value = ip4_parse(best)
            if value is None:
                self._advance(f, best)
                raise self.error(f"Invalid IPv4 address {best}")
            if self.ipv6:
                return self._tok(f, RTRID, value, best)
            return self._tok(f, IPA, Ip(value), best)
        if rule == "ip6":
            self._advance(f, best)
            if not self.ipv6:
                raise self.error(
                    "This is an IPv4 router, therefore IPv6 addresses are not supported"
                )
            value = ip6_parse(best)
            if value is None:
                raise self.error(f"Invalid IPv6 address {best}")
            return Token(IPA, Ip(value), f.name, f.line, f.chno - f.toklen + 1)
        if rule in ("hex", "dec"):
            value = int(best[2:], 16) if rule == "hex" else int(best)
            if value > 0xFFFFFFFF:
                self._advance(f, best)
                raise self.error("Number out of range")
            return self._tok(f, NUM, value, best)
        if rule == "elsecol":
            return self._tok(f, ELSECOL, None, best)
        name = best[1:-1] if best.startswith("'") else best
        if name in self.keywords:
            return self._tok(f, name.upper(), name, best)
        if name in self.enums:
            return self._tok(f, ENUM, self.enums[name], best)
        if len(name.encode("latin-1")) > SYM_MAX_LEN:
            self._advance(f, best)
            raise self.error("Symbol too long")
        return self._tok(f, SYM, name, best)

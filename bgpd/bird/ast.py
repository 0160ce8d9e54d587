"""The filter language's syntax tree, as the parser builds it and the compiler reads it.

One node per BIRD instruction (``filter/filter.h`` FI_*), with the file and line BIRD would
name in a runtime error. Comparisons ``a > b`` and ``a >= b`` are stored as BIRD compiles
them: ``b < a`` and ``b <= a``.
"""


class Node:
    """A node: the file and line, then its kind's fields, its ``__slots__`` in that order
    (``_defaults``: the values of the last fields when a caller leaves them out)."""

    __slots__ = ("file", "line")
    _defaults: tuple = ()

    def __init__(self, file: str, line: int, *values) -> None:
        self.file = file
        self.line = line
        names = type(self).__slots__
        missing = len(names) - len(values)
        if missing:
            if not 0 < missing <= len(self._defaults):
                raise TypeError(f"{type(self).__name__}(file, line, {', '.join(names)})")
            values += self._defaults[len(self._defaults) - missing :]
        for name, value in zip(names, values, strict=True):
            setattr(self, name, value)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}={getattr(self, k)!r}"
            for cls in type(self).__mro__
            for k in getattr(cls, "__slots__", ())
            if k not in ("file", "line")
        )
        return f"{type(self).__name__}({fields})"


# --- expressions ------------------------------------------------------------------------------


class Const(Node):
    """A constant value (see :mod:`.values` for the Python type of each BIRD type)."""

    __slots__ = ("value",)


class Var(Node):
    """A variable or function parameter (read)."""

    __slots__ = ("sym",)


class StaticAttr(Node):
    """A route attribute that always exists: net, source, ifname, proto, from, gw, dest,
    scope, cast, ifindex."""

    __slots__ = ("name",)


class DynAttr(Node):
    """An extended attribute: bgp_*, krt_*, ... (void when the route does not carry it)."""

    __slots__ = ("name",)


class Pref(Node):
    """``preference`` (read)."""

    __slots__ = ()


class BinOp(Node):
    """``+ - * / && || = != < <= ~ !~`` (``>`` and ``>=`` arrive as swapped ``<``/``<=``)."""

    __slots__ = ("op", "a", "b")


class Not(Node):
    __slots__ = ("a",)


class Defined(Node):
    __slots__ = ("a",)


class Method(Node):
    """``term.ip``, ``.len``, ``.mask(n)``, ``.first``, ``.last``, ``.last_nonaggregated``."""

    __slots__ = ("op", "a", "arg")
    _defaults = (None,)


class Construct(Node):
    """A pair ``(a, b)``, an extended community ``(rt, a, b)`` or a large community
    ``(a, b, c)`` built from non-constant terms when the filter runs."""

    __slots__ = ("kind", "args", "ec_kind")  # kind: "pair", "ec" or "lc"
    _defaults = (0,)


class PathMaskExpr(Node):
    """``[= 1 (x) * =]`` with terms inside: items as in :class:`.values.PathMask`, with
    ``("expr", node)`` items evaluated when the filter runs."""

    __slots__ = ("items",)


class Call(Node):
    """A function call (as a term or as a statement)."""

    __slots__ = ("func", "args")  # func: the Function


class Empty(Node):
    """``+empty+`` (path), ``-empty-`` (clist), ``--empty--``, ``---empty---``."""

    __slots__ = ("vtype",)


class ListOp(Node):
    """``prepend(p, n)``, ``add(l, v)``, ``delete(l, v)``, ``filter(l, v)``."""

    __slots__ = ("op", "a", "b")


# --- statements -------------------------------------------------------------------------------


class If(Node):
    __slots__ = ("cond", "then", "else_")


class SetVar(Node):
    __slots__ = ("sym", "value")


class SetDyn(Node):
    """``attr = term;``; ``value`` None is ``unset(attr)``."""

    __slots__ = ("name", "value")


class SetStatic(Node):
    __slots__ = ("name", "value")


class SetPref(Node):
    __slots__ = ("value",)


class Return(Node):
    __slots__ = ("value",)


class Die(Node):
    """``accept``, ``reject``, ``error``, ``quitbird``, ``print``, ``printn`` with the
    values to print."""

    __slots__ = ("kind", "prints")


class CallStmt(Node):
    __slots__ = ("call",)


class Case(Node):
    """``case term { items: cmds ... else: cmds }``: ``arms`` is ``[(FSet | None, body)]``,
    None for ``else``."""

    __slots__ = ("value", "arms")


# --- definitions ------------------------------------------------------------------------------


class Function:
    """A ``function``: its parameters and local variables (Symbols) and body."""

    __slots__ = ("name", "params", "locals", "body", "file", "line", "compiled", "value_used")

    def __init__(self, name: str, file: str, line: int) -> None:
        self.name = name
        self.params: list = []
        self.locals: list = []
        self.body: list | None = None  # None while its own body is being parsed
        self.file = file
        self.line = line
        self.compiled = None
        self.value_used = False  # called as a term somewhere: track its value

    def __repr__(self) -> str:
        return f"Function({self.name!r})"


class FilterDef:
    """A named ``filter`` or an inline ``filter { ... }`` (name None, shown as (unnamed))."""

    __slots__ = ("name", "locals", "body", "file", "line", "compiled")

    def __init__(self, name: "str | None", file: str, line: int) -> None:
        self.name = name
        self.locals: list = []
        self.body: list = []
        self.file = file
        self.line = line
        self.compiled = None

    def __repr__(self) -> str:
        return f"FilterDef({self.name or '(unnamed)'!r})"

"""The filter language's syntax tree, as the parser builds it and the compiler reads it.

One node per BIRD instruction (``filter/filter.h`` FI_*), with the file and line BIRD would
name in a runtime error. Comparisons ``a > b`` and ``a >= b`` are stored as BIRD compiles
them: ``b < a`` and ``b <= a``.
"""


class Node:
    __slots__ = ("file", "line")

    def __init__(self, file: str, line: int) -> None:
        self.file = file
        self.line = line

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

    def __init__(self, file, line, value) -> None:
        super().__init__(file, line)
        self.value = value


class Var(Node):
    """A variable or function parameter (read)."""

    __slots__ = ("sym",)

    def __init__(self, file, line, sym) -> None:
        super().__init__(file, line)
        self.sym = sym


class StaticAttr(Node):
    """A route attribute that always exists: net, source, ifname, proto, from, gw, dest,
    scope, cast, ifindex."""

    __slots__ = ("name",)

    def __init__(self, file, line, name: str) -> None:
        super().__init__(file, line)
        self.name = name


class DynAttr(Node):
    """An extended attribute: bgp_*, krt_*, ... (void when the route does not carry it)."""

    __slots__ = ("name",)

    def __init__(self, file, line, name: str) -> None:
        super().__init__(file, line)
        self.name = name


class Pref(Node):
    """``preference`` (read)."""

    __slots__ = ()


class BinOp(Node):
    """``+ - * / && || = != < <= ~ !~`` (``>`` and ``>=`` arrive as swapped ``<``/``<=``)."""

    __slots__ = ("op", "a", "b")

    def __init__(self, file, line, op: str, a, b) -> None:
        super().__init__(file, line)
        self.op = op
        self.a = a
        self.b = b


class Not(Node):
    __slots__ = ("a",)

    def __init__(self, file, line, a) -> None:
        super().__init__(file, line)
        self.a = a


class Defined(Node):
    __slots__ = ("a",)

    def __init__(self, file, line, a) -> None:
        super().__init__(file, line)
        self.a = a


class Method(Node):
    """``term.ip``, ``.len``, ``.mask(n)``, ``.first``, ``.last``, ``.last_nonaggregated``."""

    __slots__ = ("op", "a", "arg")

    def __init__(self, file, line, op: str, a, arg=None) -> None:
        super().__init__(file, line)
        self.op = op
        self.a = a
        self.arg = arg


class Construct(Node):
    """A pair ``(a, b)``, an extended community ``(rt, a, b)`` or a large community
    ``(a, b, c)`` built from non-constant terms when the filter runs."""

    __slots__ = ("kind", "args", "ec_kind")

    def __init__(self, file, line, kind: str, args: tuple, ec_kind: int = 0) -> None:
        super().__init__(file, line)
        self.kind = kind  # "pair", "ec", "lc"
        self.args = args
        self.ec_kind = ec_kind


class PathMaskExpr(Node):
    """``[= 1 (x) * =]`` with terms inside: items as in :class:`.values.PathMask`, with
    ``("expr", node)`` items evaluated when the filter runs."""

    __slots__ = ("items",)

    def __init__(self, file, line, items: tuple) -> None:
        super().__init__(file, line)
        self.items = items


class Call(Node):
    """A function call (as a term or as a statement)."""

    __slots__ = ("func", "args")

    def __init__(self, file, line, func, args: tuple) -> None:
        super().__init__(file, line)
        self.func = func  # the Function
        self.args = args


class Empty(Node):
    """``+empty+`` (path), ``-empty-`` (clist), ``--empty--``, ``---empty---``."""

    __slots__ = ("vtype",)

    def __init__(self, file, line, vtype: type) -> None:
        super().__init__(file, line)
        self.vtype = vtype


class ListOp(Node):
    """``prepend(p, n)``, ``add(l, v)``, ``delete(l, v)``, ``filter(l, v)``."""

    __slots__ = ("op", "a", "b")

    def __init__(self, file, line, op: str, a, b) -> None:
        super().__init__(file, line)
        self.op = op
        self.a = a
        self.b = b


# --- statements -------------------------------------------------------------------------------


class If(Node):
    __slots__ = ("cond", "then", "else_")

    def __init__(self, file, line, cond, then: list, else_: "list | None") -> None:
        super().__init__(file, line)
        self.cond = cond
        self.then = then
        self.else_ = else_


class SetVar(Node):
    __slots__ = ("sym", "value")

    def __init__(self, file, line, sym, value) -> None:
        super().__init__(file, line)
        self.sym = sym
        self.value = value


class SetDyn(Node):
    """``attr = term;``; ``value`` None is ``unset(attr)``."""

    __slots__ = ("name", "value")

    def __init__(self, file, line, name: str, value) -> None:
        super().__init__(file, line)
        self.name = name
        self.value = value


class SetStatic(Node):
    __slots__ = ("name", "value")

    def __init__(self, file, line, name: str, value) -> None:
        super().__init__(file, line)
        self.name = name
        self.value = value


class SetPref(Node):
    __slots__ = ("value",)

    def __init__(self, file, line, value) -> None:
        super().__init__(file, line)
        self.value = value


class Return(Node):
    __slots__ = ("value",)

    def __init__(self, file, line, value) -> None:
        super().__init__(file, line)
        self.value = value


class Die(Node):
    """``accept``, ``reject``, ``error``, ``quitbird``, ``print``, ``printn`` with the
    values to print."""

    __slots__ = ("kind", "prints")

    def __init__(self, file, line, kind: str, prints: tuple) -> None:
        super().__init__(file, line)
        self.kind = kind
        self.prints = prints


class CallStmt(Node):
    __slots__ = ("call",)

    def __init__(self, file, line, call: Call) -> None:
        super().__init__(file, line)
        self.call = call


class Case(Node):
    """``case term { items: cmds ... else: cmds }``: ``arms`` is ``[(FSet | None, body)]``,
    None for ``else``."""

    __slots__ = ("value", "arms")

    def __init__(self, file, line, value, arms: list) -> None:
        super().__init__(file, line)
        self.value = value
        self.arms = arms


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

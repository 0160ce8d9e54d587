"""Config sections: how a key is declared (:func:`key`) and the one parser that turns a
mapping into a frozen dataclass field by field (:func:`section`).

Every key path in an error is built here: :func:`section` raises :class:`~.errors.Invalid`
with the key relative to the mapping it parsed, and each enclosing level prefixes its own
part, so that the loader can name ``neighbors[2].max_prefixes.limit``.
"""

import dataclasses
import difflib
from dataclasses import MISSING, field
from typing import Any

from .checks import Checker, describe
from .errors import Invalid


class Sections:
    """A list of sub-sections (``listen``, ``neighbors``), each parsed as ``cls``."""

    def __init__(self, cls: type) -> None:
        self.cls = cls


def key(
    check: "Checker | Sections",
    default: Any = MISSING,
    *,
    doc: str,
    session: bool = False,
    inherit: bool = False,
    uses: tuple[str, ...] = (),
    repr: bool = True,
    name: str | None = None,
):
    """Declare a config key.

    ``session``: changing it needs the BGP session to be re-established (see :mod:`.diff`).
    ``inherit``: when absent, the value of the same key of the enclosing section is used.
    ``uses``: keys of the same section, declared before this one, passed to ``check`` by name.
    ``name``: the YAML key when it differs from the field name (``import`` is a keyword).
    """
    metadata = {
        "check": check,
        "doc": doc,
        "session": session,
        "inherit": inherit,
        "uses": uses,
        "yaml": name,
    }
    if isinstance(default, dict | list | set):
        empty = type(default)
        return field(default_factory=empty, metadata=metadata, repr=repr)
    return field(default=default, metadata=metadata, repr=repr)


def join_key(name: str, sub: str | None) -> str:
    """``neighbors`` + ``[2].hold_time`` -> ``neighbors[2].hold_time``."""
    if not sub:
        return name
    if not name:
        return sub
    return name + sub if sub.startswith("[") else f"{name}.{sub}"


def unknown_key_reason(name: Any, known) -> str:
    if not isinstance(name, str):
        return f"keys must be strings, got {describe(name)}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (known keys: {', '.join(known)})"


def section(cls: type, data: Any, outer: dict | None = None, validators: dict | None = None):
    """Parse the mapping ``data`` into the frozen dataclass ``cls``.

    Each field's ``key(...)`` declaration gives its checker, default, YAML name and the
    sibling keys it uses; ``inherit`` keys missing here take the value ``outer`` (the
    enclosing section's parsed values) has. ``validators`` maps a class to a function
    ``(obj, given_keys)`` run on the result. Raises :class:`Invalid` with the key path
    relative to ``data``.
    """
    if not isinstance(data, dict):
        raise Invalid(f"expected a mapping, got {describe(data)}")
    # YAML key -> field (they differ where the YAML key is a Python keyword, e.g. import)
    fields = {(f.metadata.get("yaml") or f.name): f for f in dataclasses.fields(cls)}
    for name in data:
        if name not in fields:
            shown = name if isinstance(name, str) else repr(name)
            raise Invalid(unknown_key_reason(name, fields), shown)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        meta = f.metadata
        if name in data:
            values[f.name] = _value(meta["check"], data[name], name, values, meta, validators)
        elif meta["inherit"] and outer is not None and f.name in outer:
            values[f.name] = outer[f.name]
        elif f.default is not MISSING:
            values[f.name] = f.default
        elif f.default_factory is not MISSING:
            values[f.name] = f.default_factory()
        else:
            raise Invalid("required key is missing", name)
    obj = cls(**values)
    validate = (validators or {}).get(cls)
    if validate is not None:
        validate(obj, frozenset(data))
    return obj


def _value(check, raw: Any, name: str, siblings: dict, meta, validators) -> Any:
    if isinstance(check, Sections):
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise Invalid(f"expected a list, got {describe(raw)}", name)
        out = []
        for i, item in enumerate(raw):
            try:
                out.append(section(check.cls, item, siblings, validators))
            except Invalid as e:
                raise Invalid(e.reason, join_key(f"{name}[{i}]", e.key)) from None
        return tuple(out)
    try:
        return check(raw, *(siblings[u] for u in meta["uses"]))
    except Invalid as e:
        raise Invalid(e.reason, join_key(name, e.key)) from None


def mapping_of(cls: type, validate=None) -> Checker:
    """A checker for a key whose value is a mapping parsed into ``cls`` (:func:`section`)."""
    validators = {cls: validate} if validate is not None else None
    return lambda value: section(cls, value, None, validators)

"""Reading a YAML file into the frozen :class:`~.schema.Config`, driven by the schema's fields."""

import dataclasses
import functools
from typing import Any

from .checks import describe
from .errors import ConfigError, Invalid
from .fields import join_key, section
from .schema import VALIDATORS, Config, Neighbor, Template, _template_asn, _TopTimers


class _Located(Exception):
    """An :class:`Invalid` whose key path is complete."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason


def _join(prefix: str, suffix: str | None) -> str:
    return join_key(prefix, suffix)


def _section(cls: type, data: Any, path: str, outer: dict) -> Any:
    """Parse the mapping ``data`` at key ``path`` into ``cls`` (:func:`.fields.section`);
    ``outer`` holds the parsed values of the enclosing section (inherited keys)."""
    try:
        return section(cls, data, outer, VALIDATORS)
    except Invalid as e:
        raise _Located(_join(path, e.key), e.reason) from None


def parse(data: Any, file: str = "<string>") -> Config:
    """Check ``data`` (what YAML produced) and build the :class:`Config`.

    Raises :class:`ConfigError` naming ``file``, the key path and the reason.
    """
    if data is None:
        raise ConfigError(file, "", "the configuration is empty")
    if not isinstance(data, dict):
        raise ConfigError(file, "", f"expected a mapping at the top level, got {describe(data)}")
    try:
        data, templates = _expand_templates(data)
        config = _section(Config, data, "", {})
        _check_dynamic(config, templates)
        return dataclasses.replace(config, templates=templates)
    except _Located as e:
        raise ConfigError(file, e.key, e.reason) from None


# A neighbor made from a template is parsed with these stand-ins for what the template may
# leave open (the address always; the AS when it is any/internal/external).
_PLACEHOLDER_ADDRESS = {"ipv4": "192.0.2.255", "ipv6": "2001:db8::ffff"}
_PLACEHOLDER_ASN = 4294967294


def _expand_templates(data: dict) -> tuple[dict, dict]:
    """Merge each neighbor's ``template`` under its own keys; check every template.

    Returns the data with merged neighbors, and ``{name: Template}`` where a Template holds
    the parsed neighbor settings and the AS mode (a number, or any/internal/external).
    """
    raw = data.get("templates")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise _Located("templates", f"expected a mapping of template names, got {describe(raw)}")
    templates = {}
    for name, tpl in raw.items():
        where = f"templates.{name}"
        if not isinstance(tpl, dict):
            raise _Located(where, f"expected a mapping of neighbor keys, got {describe(tpl)}")
        if "address" in tpl:
            raise _Located(f"{where}.address", "a template has no address (the neighbor gives it)")
        if "template" in tpl:
            raise _Located(f"{where}.template", "templates do not nest")
        asn = tpl.get("asn")
        mode = None
        if asn is not None:
            try:
                mode = _template_asn(asn)
            except Invalid as e:
                raise _Located(f"{where}.asn", e.reason + " (or any, internal, external)")
        probe = dict(tpl)
        probe["address"] = _PLACEHOLDER_ADDRESS["ipv4"]
        probe["asn"] = mode if isinstance(mode, int) else _PLACEHOLDER_ASN
        try:
            parsed = _section(Neighbor, probe, where, data_defaults(data))
        except _Located as e:
            raise _Located(e.key, e.reason) from None
        templates[name] = Template(name=name, neighbor=parsed, asn=mode, keys=frozenset(tpl))
    neighbors = data.get("neighbors")
    if isinstance(neighbors, list) and templates is not None:
        merged = []
        for i, n in enumerate(neighbors):
            if isinstance(n, dict) and "template" in n:
                name = n["template"]
                if name not in raw:
                    known = ", ".join(sorted(map(str, raw))) or "none defined"
                    raise _Located(
                        f"neighbors[{i}].template", f"no template named {name!r} ({known})"
                    )
                tpl = dict(raw[name])
                if isinstance(templates[name].asn, str) and "asn" not in n:
                    raise _Located(
                        f"neighbors[{i}].asn",
                        f"template {name!r} has asn: {templates[name].asn}, "
                        "which only dynamic neighbors can use: give the neighbor's AS",
                    )
                n = {**tpl, **n}
            merged.append(n)
        data = {**data, "neighbors": merged}
    data = {k: v for k, v in data.items() if k != "templates"}
    return data, templates


def data_defaults(data: dict) -> dict:
    """Top-level values neighbors inherit (hold_time, keepalive, connect_retry)."""
    out = {}
    for k in ("hold_time", "keepalive", "connect_retry"):
        if k in data:
            out[k] = data[k]
    try:
        defaults = _section(_TopTimers, out, "", {})
    except _Located:
        return {}
    return {k: getattr(defaults, k) for k in ("hold_time", "keepalive", "connect_retry")}


def _check_dynamic(config: Config, templates: dict) -> None:
    for i, d in enumerate(config.dynamic_neighbors):
        if d.template not in templates:
            known = ", ".join(sorted(templates)) or "none defined"
            raise _Located(
                f"dynamic_neighbors[{i}].template", f"no template named {d.template!r} ({known})"
            )
        if templates[d.template].asn is None:
            raise _Located(
                f"dynamic_neighbors[{i}].template",
                f"template {d.template!r} needs an asn (a number, any, internal or external)",
            )


@functools.cache
def _yaml():
    """PyYAML and a ``SafeLoader`` that refuses a key given twice in one mapping, on the first
    file read (a daemon that reads none, bgpd-bird without a bgpd.yaml, does without ~3 MiB)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Loader, node, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # keys from "<<: *anchor" may be overridden
            k = loader.construct_object(key_node, deep=deep)
            try:
                dup = k in seen
            except TypeError:
                continue  # unhashable: construct_mapping reports it
            if dup:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {k!r}", key_node.start_mark
                )
            seen.add(k)
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml, Loader


def loads(text: str, file: str = "<string>") -> Config:
    """Parse YAML text (see :func:`load`)."""
    yaml, loader = _yaml()
    try:
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        raise ConfigError(file, where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(file, "", f"invalid YAML: {e}") from None
    return parse(data, file)


def load(path: str) -> Config:
    """Read and check the YAML config file at ``path``; raises :class:`ConfigError`."""
    file = str(path)
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as e:
        raise ConfigError(file, "", f"cannot read the file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(file, "", f"not UTF-8 text: {e.reason} at octet {e.start}") from None
    return loads(text, file)

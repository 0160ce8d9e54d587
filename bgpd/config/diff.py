"""What changed between two configs: the input of a live reload.

Neighbors are matched by address. A changed neighbor lists the keys that differ and whether
any of them is a session parameter (declared with ``session=True`` in the schema): those need
the session to be re-established, the others (description, shutdown, connect_retry, ...) are
applied to the running session.
"""

import dataclasses
from dataclasses import dataclass

from .schema import Config, Neighbor

SESSION_KEYS = frozenset(f.name for f in dataclasses.fields(Neighbor) if f.metadata["session"])
# Top-level keys whose change restarts every session (they go into every OPEN).
_RESET_ALL_KEYS = frozenset({"router_id", "asn"})


@dataclass(frozen=True)
class NeighborChange:
    old: Neighbor
    new: Neighbor
    keys: tuple[str, ...]  # the neighbor's keys whose value changed, in schema order

    @property
    def address(self) -> str:
        return self.new.address

    @property
    def session(self) -> bool:
        """Whether a session parameter changed (the session must be reset)."""
        return any(k in SESSION_KEYS for k in self.keys)


@dataclass(frozen=True)
class ConfigDiff:
    added: tuple[Neighbor, ...] = ()
    removed: tuple[Neighbor, ...] = ()
    changed: tuple[NeighborChange, ...] = ()
    networks_added: tuple[str, ...] = ()
    networks_removed: tuple[str, ...] = ()
    # top-level keys other than neighbors and networks whose value changed
    globals_changed: tuple[str, ...] = ()

    @property
    def networks_changed(self) -> bool:
        return bool(self.networks_added or self.networks_removed)

    @property
    def reset_all(self) -> bool:
        """The router ID or the AS changed: every session must be re-established."""
        return any(k in _RESET_ALL_KEYS for k in self.globals_changed)

    def __bool__(self) -> bool:
        return bool(
            self.added
            or self.removed
            or self.changed
            or self.networks_changed
            or self.globals_changed
        )


def _changed_keys(old, new) -> tuple[str, ...]:
    return tuple(
        f.name
        for f in dataclasses.fields(type(new))
        if getattr(old, f.name) != getattr(new, f.name)
    )


def diff(old: Config, new: Config) -> ConfigDiff:
    """Compare two configs (neighbors keep the order of the config they come from)."""
    old_by_addr = {n.address: n for n in old.neighbors}
    new_by_addr = {n.address: n for n in new.neighbors}
    changed = []
    for n in new.neighbors:
        o = old_by_addr.get(n.address)
        if o is not None and o != n:
            changed.append(NeighborChange(o, n, _changed_keys(o, n)))
    old_nets, new_nets = set(old.networks), set(new.networks)
    return ConfigDiff(
        added=tuple(n for n in new.neighbors if n.address not in old_by_addr),
        removed=tuple(n for n in old.neighbors if n.address not in new_by_addr),
        changed=tuple(changed),
        networks_added=tuple(p for p in new.networks if p not in old_nets),
        networks_removed=tuple(p for p in old.networks if p not in new_nets),
        globals_changed=tuple(
            k for k in _changed_keys(old, new) if k not in ("neighbors", "networks")
        ),
    )

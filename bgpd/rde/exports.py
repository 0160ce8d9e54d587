"""The export side: what a group of peers receives for a route.

Peers that share everything the export rules read share an :class:`ExportContext` (one
per export key) and, through it, an export group (:mod:`bgpd.rib.export`). Calling the
context with ``(source, attrs, prefix, family)`` applies the reflection and eBGP/iBGP rules
(:func:`bgpd.reflector.export_attrs`), the next hop and the export policy, and returns the
attribute set to send or None; the result is remembered on the set per (context, family,
source) unless the policy reads the prefix.
"""

import itertools
from typing import Protocol

from bgpd.policy import RouteInfo
from bgpd.reflector import Target, export_attrs
from bgpd.wire import prefix as pfx
from bgpd.wire.attrs import SAME, AttrSet
from bgpd.wire.constants import IPV4_UNICAST, IPV6_UNICAST

from .imports import Identity


def next_hop_for(local: str | None, fam) -> bytes | None:
    """Our next hop toward a neighbor for a family, when the daemon gave none: the session's
    local address if it is of the family, else none (no route of that family is sent with
    a next hop of ours: a v4-mapped IPv6 address is installable by nobody)."""
    if local is None:
        return None
    if (fam == IPV4_UNICAST) == (":" not in local):
        return pfx.addr_from_str(local.split("%")[0])
    return None


class ExportRules(Protocol):
    """Export rules a peer brings of its own (``Peer.export_rules``) instead of bgpd's:
    ``key(peer, neg, local)`` names the context (peers with equal keys share it, and an export
    group); ``build(key, uid, peer, neg, local)`` makes it: an :class:`ExportFn`-like callable
    ``(source, attrs, prefix, family) -> AttrSet | None`` with ``prefix_dependent``, ``key``
    and ``uid`` (which names its results cached on attribute sets)."""

    def key(self, peer, neg, local: str | None) -> tuple: ...

    def build(self, key: tuple, uid: int, peer, neg, local: str | None): ...


class ExportContext:
    """The export rules of one export key; called by export groups on every cache miss."""

    __slots__ = (
        "key",
        "uid",
        "targets",
        "policy",
        "prefix_dependent",
        "identity",
        "holders",
        "memo_keys",
    )

    def __init__(self, key: tuple, uid: int, targets: dict, policy, identity, holders) -> None:
        self.key = key
        self.uid = uid
        self.targets = targets  # family -> reflector.Target
        self.policy = policy
        # the result depends on the prefix, not only on (source, set): no caching, and no
        # reuse of one result for a run of prefixes (ExportGroup._drain_best)
        self.prefix_dependent = policy is not None and not policy.attr_only
        self.identity = identity
        self.holders = holders  # source index -> Peer, whose cached_on records our results
        # (uid, family, source index) -> itself: the memo key every set caching a result of
        # ours holds, one object per source (not one per set)
        self.memo_keys: dict = {}

    def __repr__(self) -> str:
        return f"ExportContext({self.uid})"

    def __call__(self, src, attrs: AttrSet, prefix: bytes, fam):
        if self.prefix_dependent:
            return self._compute(attrs, src, prefix, fam)
        key = (self.uid, fam, src.index)
        r = attrs.cache.get(key)  # AttrSet.memo, inlined: this runs once per run of prefixes
        if r is None:
            key = self.memo_keys.setdefault(key, key)
            return attrs.memo(key, self._remember, src, prefix, fam)  # a miss, or None cached
        return attrs if r is SAME else r

    def _remember(self, attrs: AttrSet, src, prefix: bytes, fam):
        result = self._compute(attrs, src, prefix, fam)
        holder = self.holders.get(src.index)
        if holder is not None and id(attrs) not in holder.cached_on:  # (import put it there)
            holder.cached_on[id(attrs)] = attrs
        return result

    def _compute(self, attrs: AttrSet, src, prefix: bytes, fam):
        target = self.targets[fam]
        result = export_attrs(src, attrs, target, self.identity.cluster_id)
        pol = self.policy
        if result is not None and pol is not None:
            iface = src.interface_of(fam, prefix) if hasattr(src, "interface_of") else None
            info = RouteInfo(
                src.kind, src.name if src.is_bgp else None, iface, target.local_as, target.next_hop
            )
            result = pol.evaluate(result, prefix, fam, info)
        return result


# Context ids name cached results on interned attribute sets, which every engine of the
# process shares (tests run several): unique for the process, never reused.
_uids = itertools.count(1)


class ExportContexts:
    """Export key -> context, and the bookkeeping to drop a removed peer's cached results."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.contexts: dict = {}  # export key -> ExportContext
        self.holders: dict = {}  # source index -> Peer (see ExportContext.holders)

    def __len__(self) -> int:
        return len(self.contexts)

    def for_peer(self, peer, neg, local: str | None) -> ExportContext:
        """The context of ``peer``'s session (``neg``: its negotiated parameters, ``local``:
        its local address)."""
        src = peer.source
        self.holders[src.index] = peer
        rules = peer.export_rules
        if rules is not None:
            key = ("rules", *rules.key(peer, neg, local))
            c = self.contexts.get(key)
            if c is None:
                c = self.contexts[key] = rules.build(key, next(_uids), peer, neg, local)
            return c
        ctx = neg.context
        cfg = peer.cfg
        hops = peer.next_hops
        if hops is None:
            hops = {fam: next_hop_for(local, fam) for fam in (IPV4_UNICAST, IPV6_UNICAST)}
        key = (
            src.ibgp,
            src.rr_client,
            src.local_as,
            local,
            tuple(sorted(hops.items())),
            cfg.next_hop_self,
            ctx.as4,
            tuple(sorted(ctx.add_path_tx)),
            ctx.extended_message,
            tuple(sorted(neg.families)),
            # the compiled policy, not its names: a reload that changes a policy's terms
            # compiles a new one, which must not reuse the old one's context and results
            peer.export_policy.uid if peer.export_policy is not None else None,
        )
        c = self.contexts.get(key)
        if c is None:
            targets = {
                fam: Target(
                    ibgp=src.ibgp,
                    rr_client=src.rr_client,
                    local_as=src.local_as,
                    next_hop=hops.get(fam),
                    next_hop_self=cfg.next_hop_self,
                )
                for fam in (IPV4_UNICAST, IPV6_UNICAST)
            }
            c = self.contexts[key] = ExportContext(
                key, next(_uids), targets, peer.export_policy, self.identity, self.holders
            )
        return c

    def forget(self, peer, families) -> None:
        """Drop the import and export results cached for ``peer`` (being removed, its index
        is never used again) from the attribute sets that are still alive."""
        keys = list(peer.import_keys)
        keys += [(c.uid, fam, peer.index) for c in self.contexts.values() for fam in families]
        for c in self.contexts.values():
            memo_keys = getattr(c, "memo_keys", None)  # (a peer's own ExportRules: none)
            for fam in families if memo_keys else ():
                memo_keys.pop((c.uid, fam, peer.index), None)
        for attrs in list(peer.cached_on.values()):
            cache = attrs.cache
            for k in keys:
                cache.pop(k, None)
        peer.cached_on.clear()
        self.holders.pop(peer.index, None)

    def clear(self) -> None:
        self.contexts.clear()
        self.holders.clear()

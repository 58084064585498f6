"""Decide: derivation × request features × live state → ranked winner and failover cascade.

Per request this only finishes the residual clauses of the candidates the engine left open,
ranks the survivors (unknown metrics last, `id` as the last tie-break) and selects. It never
calls the engine.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

from router.catalog.offerings import Offering
from router.decide.batch import BUILTIN_BATCH
from router.decide.evaluate import Check, Context, Evaluator, Tri, attr_value
from router.engine.derive import Derivation
from router.engine.facts import asked_max_output, call_max_output, cost, effective_max_output
from router.live.state import LiveState
from router.policy.attributes import ATTRIBUTES, Source
from router.policy.terms import Label, RankKey, ReqRef, SetOp
from router.policy.truth import Truth
from router.request.features import RequestFeatures

KeyValue = float | None
_PER_REQUEST = object()  # a rank key whose value depends on the request, live state or time
TOKEN_PARAMS = ("max_tokens", "max_completion_tokens")


class Ranked(NamedTuple):
    """A ranked offering and its rank key values (a named tuple: a record's ranking makes
    one per candidate, and a frozen dataclass cost ~3 times as much to make)."""

    offering_id: str
    keys: tuple[KeyValue, ...]


RankedPair = tuple[str, tuple[KeyValue, ...]]  # (offering id, rank key values), plain
_RANKED: Callable[[RankedPair], Ranked] = functools.partial(
    tuple.__new__, Ranked)  # `Ranked._make` without its Python frame (a ranking makes many)


@dataclass(frozen=True)
class HopCall:
    """What a hop is called with: the policy's mutations applied for that offering."""

    offering_id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class CostTable:
    """`est_cost` of a view's candidates for one asked output (and clamp), ready for any input
    token count: `est_cost = (tokens × input_price + output_term) / 1e6`, with `output_term`
    (call max output × output price) computed once. `ids` is sorted, so a stable sort on cost
    alone breaks ties by id; `unpriced` (no price or no output bound: unknown cost, ranked
    last) is sorted too."""

    ids: list[str]
    terms: list[tuple[float, float]]  # (input price, output term), in `ids` order
    unpriced: list[str]


@dataclass(frozen=True)
class LabelView:
    """Decide's work for one set of request labels: the candidates that no label test
    rejects, the clauses each still has open, and the static rank order over them (if any)."""

    offerings: list[Offering]
    checks: dict[str, tuple[tuple[str, Tri], ...]]
    static_order: list[tuple[str, tuple[KeyValue, ...]]] | None
    prices: list[tuple[str, float | None, float | None, int | None]]  # est_cost's inputs
    cost_tables: dict[tuple[int | None, bool], CostTable] = field(default_factory=dict)

    def cost_table(self, asked: int | None, clamps: bool) -> CostTable:
        key = (asked, clamps)
        table = self.cost_tables.get(key)
        if table is None:
            priced: list[tuple[str, float, float]] = []
            unpriced: list[str] = []
            for oid, ip, op, limit in self.prices:
                out = call_max_output(asked, limit, clamps)
                if ip is None or op is None or out is None:
                    unpriced.append(oid)
                else:
                    priced.append((oid, ip, out * op))
            priced.sort()
            table = CostTable([oid for oid, _, _ in priced],
                              [(ip, term) for _, ip, term in priced], sorted(unpriced))
            if len(self.cost_tables) >= MAX_COST_TABLES:
                self.cost_tables.clear()
            self.cost_tables[key] = table
        return table


class CostOrder(Sequence[RankedPair]):
    """An `est_cost` order, best first, kept flat — the table's ids, this request's costs,
    their sorted positions — and each (id, key values) pair made as it is read. Decide reads
    the first few (the winner and its cascade); a record's full ranking reads them all later,
    in the records writer's thread. A decision waiting for the writer so holds two lists, not
    ~150 tuples every young collection would walk (benchmarks/README.md, "Decisions the
    collector walks")."""

    __slots__ = ("_best", "_costs", "_ids", "_unpriced")

    def __init__(self, ids: list[str], costs: list[float], best: list[int],
                 unpriced: list[str]) -> None:
        self._ids = ids
        self._costs = costs
        self._best = best
        self._unpriced = unpriced

    def __len__(self) -> int:
        return len(self._best) + len(self._unpriced)

    def __iter__(self) -> Iterator[RankedPair]:
        ids, costs = self._ids, self._costs
        for i in self._best:
            yield ids[i], (costs[i],)
        for oid in self._unpriced:
            yield oid, _UNKNOWN_COST

    def pairs(self) -> list[RankedPair]:
        """Every pair at once (a record's full ranking; quicker than iterating)."""
        ids, costs = self._ids, self._costs
        out: list[RankedPair] = [(ids[i], (costs[i],)) for i in self._best]
        out += [(oid, _UNKNOWN_COST) for oid in self._unpriced]
        return out

    @overload
    def __getitem__(self, index: int) -> RankedPair: ...

    @overload
    def __getitem__(self, index: slice) -> list[RankedPair]: ...

    def __getitem__(self, index: int | slice) -> RankedPair | list[RankedPair]:
        if isinstance(index, slice):
            return self.pairs()[index]
        n = len(self._best)
        i = range(len(self))[index]  # IndexError, negative indices: as a list's
        if i < n:
            j = self._best[i]
            return self._ids[j], (self._costs[j],)
        return self._unpriced[i - n], _UNKNOWN_COST


_UNKNOWN_COST: tuple[KeyValue, ...] = (None,)  # an unpriced offering's est_cost: ranked last
MAX_LABEL_VIEWS = 64
MAX_COST_TABLES = 32  # per view: one per distinct asked output the requests bring


@dataclass(frozen=True)
class Decision:
    """A decision. The winner and cascade are settled by `decide`; the full ranking and the
    per-request rejections of the other candidates are finished on first use (records,
    explain, render), so the hot path checks only as many candidates as it needs."""

    derivation: Derivation
    context: Context
    selected: str | None
    cascade: tuple[str, ...]
    evaluator: Evaluator  # the decider's, shared by record, explain and render
    settle: Callable[[], tuple[Sequence[RankedPair], dict[str, tuple[str, ...]]]]
    in_view: Mapping[str, object]  # the candidates no label test struck (the view's checks)
    fail: Callable[[str], tuple[str, ...]]  # a candidate's failed residual clauses, finished

    @functools.cached_property
    def calls(self) -> tuple[HopCall, ...]:
        """What each hop is called with (the policy's mutations applied), computed on first
        use: a dry run that is only recorded never needs them."""
        return tuple(self.call(h) for h in self.hops)

    def call(self, offering_id: str) -> HopCall:
        """One hop's call (`calls` of that hop): the dispatcher asks for a hop's only when it
        gets to it, so the cascade's are not computed while the winner answers."""
        done: tuple[HopCall, ...] | None = self.__dict__.get("calls")
        if done is not None:
            for c in done:
                if c.offering_id == offering_id:
                    return c
        return HopCall(offering_id, hop_params(self.derivation, offering_id,
                                               self.context.features))

    @functools.cached_property
    def _settled(self) -> tuple[Sequence[RankedPair], dict[str, tuple[str, ...]]]:
        return self.settle()

    @functools.cached_property
    def _struck(self) -> dict[str, tuple[str, ...]]:
        """Candidates a label test struck: every failed clause of each, in catalog order."""
        d = self.derivation
        return {o.id: self.fail(o.id) for o in d.catalog.offerings
                if o.id in d.residual and o.id not in self.in_view}

    @property
    def rejected_in_view(self) -> dict[str, tuple[str, ...]]:
        """Candidates no label test rejected whose other residual clauses failed for this
        request (what a record's digest covers besides the ranking; the label-struck rest
        follows from the request's labels)."""
        return self._settled[1]

    @functools.cached_property
    def ranking(self) -> tuple[Ranked, ...]:
        """Every admissible offering, best first, with its rank key values."""
        return tuple(map(_RANKED, self._settled[0]))

    @property
    def ranked_pairs(self) -> Sequence[RankedPair]:
        """`ranking` as plain (offering id, key values) tuples, not `Ranked`s: what a record
        hashes and stores (JSON arrays as they are), without making a `Ranked` per candidate
        in the records writer."""
        return self._settled[0]

    @functools.cached_property
    def late_rejected(self) -> dict[str, tuple[str, ...]]:
        """Candidates whose residual clauses failed for this request."""
        return {**self._settled[1], **self._struck}

    @property
    def admissible(self) -> tuple[str, ...]:
        return tuple(r.offering_id for r in self.ranking)

    @property
    def hops(self) -> tuple[str, ...]:
        return ((self.selected,) if self.selected else ()) + self.cascade

    def failed_clauses(self, offering_id: str) -> tuple[str, ...]:
        """Every failed top-level clause, in program order. For an offering the derivation
        already rejected, its residual clauses are finished here too (decide's hot loop skips
        them); the record and explain report them all."""
        d = self.derivation
        if offering_id not in d.rejected:
            if offering_id in d.residual and offering_id not in self.in_view:
                return self.fail(offering_id)  # struck by a label test
            return self._settled[1].get(offering_id, ())
        o = d.catalog.get(offering_id)
        assert o is not None
        static, residual = self.evaluator.split(offering_id)
        if not residual:
            return static
        bound = self.evaluator.bound
        ctx = self.context
        late = [p for p in residual if bound(p, o)(ctx) != Truth.T]
        if not late:
            return static
        order = self.evaluator.top_order
        return tuple(sorted((*static, *late), key=order.__getitem__))

    def rejected_ids(self) -> list[str]:
        return sorted(set(self.derivation.rejected) | set(self.late_rejected))


class Decider:
    """Per-derivation state prepared once, so each request only does comparisons."""

    def __init__(self, derivation: Derivation) -> None:
        self.d = derivation
        self.evaluator = Evaluator(derivation)
        catalog = derivation.catalog
        self.candidates: list[tuple[Offering, tuple[str, ...]]] = [
            (o, derivation.residual[o.id]) for o in catalog.offerings
            if o.id in derivation.residual
        ]
        # Per candidate, its residual clauses bound to it (`Evaluator.bind`): static parts are
        # constants, so a decision only compares request and live values.
        self.checks: dict[str, tuple[tuple[str, Tri], ...]] = {
            o.id: tuple((ptr, self.evaluator.bind(ptr, o)) for ptr in residual)
            for o, residual in self.candidates
        }
        # The same checks for `failed` (every candidate of a record's full ranking): a residual
        # built-in is one comparison called directly, the rest through its bound check.
        self.plans: dict[str, tuple[tuple[str, Offering, Check | None, Tri], ...]] = {
            o.id: tuple((ptr, o, self.evaluator.builtin_check(ptr, o), check)
                        for ptr, check in self.checks[o.id])
            for o, _ in self.candidates
        }
        # For `failed_all`: the candidates with a clause other than a residual built-in, and
        # per residual built-in the candidates it applies to.
        self.generic = {oid for oid, plan in self.plans.items()
                        if any(builtin is None for _, _, builtin, _ in plan)}
        self.holders: dict[str, list[Offering]] = {}
        for plan in self.plans.values():
            for ptr, o, builtin, _ in plan:
                if builtin is not None:
                    self.holders.setdefault(ptr, []).append(o)
        self.batches = {ptr: BUILTIN_BATCH[ptr](offerings)
                        for ptr, offerings in self.holders.items()}
        self.offerings = [o for o, _ in self.candidates]
        self.rank = derivation.policy.rank
        self.prices = {o.id: (o.input_price, o.output_price, o.max_output_tokens)
                       for o, _ in self.candidates}
        self.fixed = {o.id: self._fixed_keys(o) for o, _ in self.candidates}
        self.needs_est_cost = any(k.metric == "est_cost" and not k.evidence for k in self.rank)
        static = all(v is not _PER_REQUEST for f in self.fixed.values() for v in f)
        self.static_order: list[tuple[str, tuple[KeyValue, ...]]] | None = (
            [(r.offering_id, r.keys) for r in self.order(self.offerings, None)]
            if static else None)
        self.only_est_cost = (len(self.rank) == 1 and self.rank[0].metric == "est_cost"
                              and not self.rank[0].evidence)
        self.label_names, self.all_labels_matter = _label_dependence(derivation)
        self._views: OrderedDict[frozenset[str], LabelView] = OrderedDict()
        self._views_lock = threading.Lock()

    def view(self, labels: tuple[str, ...]) -> LabelView:
        """The candidates and open clauses for requests with these labels (the policy's label
        tests settled once per label set: partial evaluation on the labels it reads)."""
        key = frozenset(labels) if self.all_labels_matter else (
            frozenset(labels) & self.label_names)
        with self._views_lock:
            found = self._views.get(key)
            if found is not None:
                self._views.move_to_end(key)
                return found
        built = self._build_view(key)
        with self._views_lock:
            self._views[key] = built
            while len(self._views) > MAX_LABEL_VIEWS:
                self._views.popitem(last=False)
        return built

    def _build_view(self, labels: frozenset[str]) -> LabelView:
        ev = self.evaluator
        alive: list[Offering] = []
        checks: dict[str, tuple[tuple[str, Tri], ...]] = {}
        for o, residual in self.candidates:
            settled = {ptr: ev.settled_by_labels(ptr, o, labels) for ptr in residual}
            if any(t is not None and t != Truth.T for t in settled.values()):
                continue  # a clause fails for every request with these labels
            alive.append(o)
            checks[o.id] = tuple((ptr, check) for ptr, check in self.checks[o.id]
                                 if settled[ptr] is None)
        order = None
        if self.static_order is not None:
            order = [(oid, keys) for oid, keys in self.static_order if oid in checks]
        prices = [(o.id, *self.prices[o.id]) for o in alive]
        return LabelView(alive, checks, order, prices)

    def decide(self, features: RequestFeatures, live: LiveState, at: dt.datetime) -> Decision:
        ctx = Context(features, live, at)
        view = self.view(features.labels)
        ordered = self.ordered(ctx, view)
        want = 1 + self.d.policy.cascade
        failed: dict[str, tuple[str, ...]] = {}
        hops: list[str] = []
        checked = 0
        checks = view.checks
        for oid, _ in ordered:  # best first: stop at the winner and its cascade
            if len(hops) == want:
                break
            checked += 1
            f = tuple(ptr for ptr, check in checks[oid] if check(ctx) != Truth.T)
            if f:
                failed[oid] = f
            else:
                hops.append(oid)

        def settle() -> tuple[Sequence[RankedPair], dict[str, tuple[str, ...]]]:
            pairs = ordered.pairs() if isinstance(ordered, CostOrder) else ordered
            late = {**failed,
                    **self.failed_all([oid for oid, _ in pairs[checked:]], ctx)}
            if not late:
                return pairs, late
            return [p for p in pairs if p[0] not in late], late

        def fail(offering_id: str) -> tuple[str, ...]:
            return self.failed(offering_id, ctx)

        selected = hops[0] if hops else None
        cascade = tuple(hops[1:])
        return Decision(self.d, ctx, selected, cascade, self.evaluator, settle, checks, fail)

    def failed(self, offering_id: str, ctx: Context) -> tuple[str, ...]:
        """The candidate's residual clauses that fail for this request."""
        out: list[str] = []
        for ptr, o, builtin, check in self.plans[offering_id]:
            if not builtin(o, ctx) if builtin is not None else check(ctx) != Truth.T:
                out.append(ptr)
        return tuple(out)

    def failed_all(self, ids: list[str], ctx: Context) -> dict[str, tuple[str, ...]]:
        """`failed` for many candidates (those with a failed clause only): each residual
        built-in is checked over all its candidates at once, the other clauses one by one."""
        failing = {ptr: failures(ctx) for ptr, failures in self.batches.items()}
        struck = set().union(*failing.values())
        out: dict[str, tuple[str, ...]] = {}
        for oid in ids:
            if oid in self.generic:
                f = self.failed(oid, ctx)
            elif oid in struck:
                f = tuple(ptr for ptr, _, _, _ in self.plans[oid] if oid in failing[ptr])
            else:
                continue
            if f:
                out[oid] = f
        return out

    def ordered(self, ctx: Context, view: LabelView | None = None) -> Sequence[RankedPair]:
        """Every candidate of the view (id, rank key values), best first: unknown values last,
        the id as the last tie-break. When no key depends on the request the order was
        computed once."""
        view = view or self.view(ctx.features.labels)
        if view.static_order is not None:
            return view.static_order
        if self.only_est_cost:  # the common single-key policy, from the view's cost table
            policy = self.d.policy
            table = view.cost_table(asked_max_output(ctx.features, policy),
                                    policy.clamps_max_tokens)
            tokens = ctx.features.input_tokens
            costs = [(tokens * ip + term) / 1e6 for ip, term in table.terms]  # facts.cost
            # stable on ids sorted before: ties by id, in either direction
            best = sorted(range(len(costs)), key=costs.__getitem__,
                          reverse=self.rank[0].descending)
            return CostOrder(table.ids, costs, best, table.unpriced)  # unknown costs last
        return [(r.offering_id, r.keys) for r in self.order(view.offerings, ctx)]

    def order(self, survivors: list[Offering], ctx: Context | None) -> list[Ranked]:
        keys = self.rank
        est = self._est_costs(survivors, ctx) if ctx is not None and self.needs_est_cost else {}
        ranked = []
        for o in survivors:
            fixed = self.fixed.get(o.id)
            if fixed is None:  # an offering the derivation rejected (the nearest miss)
                assert ctx is not None
                ranked.append(Ranked(o.id, tuple(self.metric(o, k, ctx) for k in keys)))
                continue
            values: list[KeyValue] = []
            for i, k in enumerate(keys):
                v = fixed[i]
                if v is _PER_REQUEST:
                    assert ctx is not None
                    values.append(est[o.id] if k.metric == "est_cost"
                                  else self.metric(o, k, ctx))
                else:
                    values.append(v)  # type: ignore[arg-type]
            ranked.append(Ranked(o.id, tuple(values)))

        def sort_key(r: Ranked) -> tuple[object, ...]:
            parts: list[object] = []
            for k, v in zip(keys, r.keys, strict=True):
                if v is None:
                    parts.append((1, 0.0))
                else:
                    parts.append((0, -v if k.descending else v))
            parts.append(r.offering_id)
            return tuple(parts)

        ranked.sort(key=sort_key)
        return ranked

    def _fixed_keys(self, o: Offering) -> tuple[KeyValue | object, ...]:
        """The rank keys no request changes (evidence, static attributes), computed once;
        `_PER_REQUEST` marks the others."""
        out: list[KeyValue | object] = []
        for k in self.rank:
            if k.evidence:
                out.append(self.d.policy.evidence.get(k.metric, {}).get(o.model))
            elif ATTRIBUTES[k.metric].source is Source.STATIC:
                value = o.attr(k.metric)
                out.append(float(value) if isinstance(value, int | float) else None)
            else:
                out.append(_PER_REQUEST)
        return tuple(out)

    def _est_costs(self, survivors: list[Offering], ctx: Context) -> dict[str, KeyValue]:
        """`est_cost` of every survivor: `facts.est_cost` with the request's ask and the
        policy's clamp read once, and each offering's prices from a table."""
        policy = self.d.policy
        asked = asked_max_output(ctx.features, policy)
        clamps = policy.clamps_max_tokens
        tokens = ctx.features.input_tokens
        out: dict[str, KeyValue] = {}
        for o in survivors:
            prices = self.prices.get(o.id)
            if prices is None:  # one the derivation rejected: `order` asks `metric` for it
                continue
            ip, op, limit = prices
            out[o.id] = cost(tokens, ip, op, call_max_output(asked, limit, clamps))
        return out

    def metric(self, o: Offering, key: RankKey, ctx: Context) -> KeyValue:
        if key.evidence:
            return self.d.policy.evidence.get(key.metric, {}).get(o.model)
        value = attr_value(o, key.metric, ctx, self.d)
        return float(value) if isinstance(value, int | float) else None


def _label_dependence(d: Derivation) -> tuple[frozenset[str], bool]:
    """(the label names the policy tests, whether a set operator reads all request labels)."""
    names: set[str] = set()
    whole = False
    for node in d.program.nodes:
        clause = node.clause
        if isinstance(clause, Label):
            names.add(clause.name)
        elif isinstance(clause, SetOp) and isinstance(clause.values, ReqRef) \
                and clause.values.feature == "labels":
            whole = True
    return frozenset(names), whole


def hop_params(derivation: Derivation, offering_id: str,
               features: RequestFeatures) -> dict[str, Any]:
    """The parameters the policy's mutations set for a call to this offering.

    `default` and `set` in policy order (a `set` overwrites; a `default` sets a parameter only
    if neither the request nor an earlier op did). Then `clamp_max_tokens` writes the call's
    max output (`facts.effective_max_output`) to the max-tokens field the request used
    (`max_completion_tokens` if that one, else `max_tokens`)."""
    o = derivation.catalog.get(offering_id)
    policy = derivation.policy
    requested = set(features.params_set)
    params: dict[str, Any] = {}
    for m in policy.mutations:
        if m.param is None:
            continue
        overrides = m.op == "set"
        fills_gap = m.op == "default" and m.param not in params and m.param not in requested
        if overrides or (fills_gap and not _asked_tokens(m.param, features)):
            params[m.param] = m.value
    if policy.clamps_max_tokens and o is not None and o.max_output_tokens is not None:
        value = effective_max_output(o, features, policy)
        used = [p for p in TOKEN_PARAMS if p in requested] or [
            p for p in TOKEN_PARAMS if p in params] or ["max_tokens"]
        field = "max_completion_tokens" if "max_completion_tokens" in used else "max_tokens"
        for p in TOKEN_PARAMS:
            params.pop(p, None)
        params[field] = value
    return params


def _asked_tokens(param: str, features: RequestFeatures) -> bool:
    """A max-tokens default is skipped when the request gives a max output."""
    return param in TOKEN_PARAMS and features.max_output_tokens is not None


"""The service's read side: `GET /v1/models`, `POST /v1/route` (a dry-run decision record),
`POST /v1/explain`, `GET /v1/traces` and `GET /v1/traces/{id}` (from the records store).

A key limited to named policies sees only their traces. Store reads and record rebuilding run
on one thread of their own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from router.records import Query, Replayer, StoredRecord, default_location, open_store
from router.records.store import RecordsError, RecordStore
from router.service.chat import failures, for_router, prepared
from router.service.errors import ServiceError
from router.service.keys import Caller
from router.service.state import State
from router.service.wire import Receive, Scope, Send, send_json

MAX_LIST = 1000
DEFAULT_LIST = 100
OUTCOMES = ("routed", "ok", "failed", "cancelled", "no_admissible")


class ReadHandler:
    def __init__(self, service: State) -> None:
        self.service = service
        self._store: RecordStore | None = None
        self._replayer: Replayer | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="service-reads")
        self._models: tuple[str, dict[str, Any]] | None = None

    async def models(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        router = self.service.router
        assert router is not None
        catalog = router.catalog
        if self._models is None or self._models[0] != catalog.version:
            self._models = (catalog.version, _model_list(sorted({o.model for o in catalog})))
        policies = [_model(f"policy:{n}", "unhardcoded") for n in self.service.chooser.names()
                    if caller.allows(n)]
        models = self._models[1]["data"] if caller.allows(None) else []
        await send_json(send, 200, {"object": "list", "data": [*policies, *models]})
        return 200

    async def route(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        router, body, chosen = await prepared(self.service, scope, receive, caller)
        request = for_router(body, caller)
        proofs = _flag(scope, "proofs")
        with failures(router):
            await router.decider_async(chosen.policy)  # derive without blocking the loop
            result = router.route(chosen.policy, request, router.live(),
                                  policy_name=chosen.record_name, caller=caller.to_json())
            record = result.record(proofs=proofs)
        await send_json(send, 200, record, {"x-unhardcoded-trace-id": result.trace_id,
                                            "x-unhardcoded-policy": chosen.name,
                                            "x-unhardcoded-policy-hash": chosen.policy.hash})
        return 200

    async def explain(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        router, body, chosen = await prepared(self.service, scope, receive, caller)
        offering = body.get("offering")
        if not isinstance(offering, str) or not offering or len(offering) > 256:
            raise ServiceError(400, "invalid_request", "`offering` (an offering id or a model "
                               "name) is required", "offering")
        request = for_router({k: v for k, v in body.items() if k != "offering"}, caller)
        request.setdefault("messages", [{"role": "user", "content": ""}])
        with failures(router):
            await router.decider_async(chosen.policy)
            found = router.explain(chosen.policy, offering, request, router.live())
        if not found:
            raise ServiceError(404, "offering_not_found",
                               f"no offering or model `{offering}` in the catalog", "offering")
        await send_json(send, 200, {"object": "list", "policy": chosen.name,
                                    "data": [e.to_json() for e in found]})
        return 200

    async def traces(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        query = _query(scope, caller)
        rows = await self._read(lambda store: list(store.iterate(query)))
        await send_json(send, 200, {"object": "list", "data": [_summary(r) for r in rows
                                                               if _visible(r, caller)]})
        return 200

    async def trace(self, scope: Scope, receive: Receive, send: Send, caller: Caller) -> int:
        trace_id = urllib.parse.unquote(scope["path"].rsplit("/", 1)[1])
        if not trace_id or len(trace_id) > 128:
            raise ServiceError(400, "invalid_request", "a trace id is 1-128 characters", "id")
        proofs = _flag(scope, "proofs")

        def read(store: RecordStore) -> dict[str, Any] | None:
            stored = store.get(trace_id)
            if stored is None or not _visible(stored, caller):
                return None
            out = _summary(stored)
            try:
                out["record"] = self._rebuilder(store).record(stored, proofs=proofs)
            except RecordsError as exc:  # kept, not rebuilt: say why and show what is stored
                out["record"] = None
                out["not_rebuilt"] = exc.problems[0].message
                out["stored"] = stored.body
            return out

        found = await self._read(read)
        if found is None:
            raise ServiceError(404, "trace_not_found", f"no trace `{trace_id}` in the store",
                               "id")
        await send_json(send, 200, found)
        return 200

    def _rebuilder(self, store: RecordStore) -> Replayer:
        if self._replayer is None:
            self._replayer = Replayer(store)
        return self._replayer

    async def _read(self, work: Any) -> Any:
        def run() -> Any:
            if self._store is None:
                self._store = open_store(self._location())
            return work(self._store)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, run)
        except RecordsError as exc:
            raise ServiceError(503, exc.code.replace(".", "_"), str(exc), None) from None

    def _location(self) -> str:
        s = self.service.settings
        where = s.records if s.records else default_location(os.environ)
        if not s.record or where is None:
            raise RecordsError("records.off", "records", "this service records nothing",
                               "start it without `--no-record`")
        return str(where)


def _model(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


def _model_list(names: list[str]) -> dict[str, Any]:
    return {"data": [_model(n, "catalog") for n in names]}


def _flag(scope: Scope, name: str) -> bool:
    query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get(name, ["false"])[-1].lower() in ("1", "true", "yes")


def _query(scope: Scope, caller: Caller) -> Query:
    raw = scope.get("query_string", b"").decode("latin-1")
    if len(raw) > 4096:
        raise ServiceError(400, "invalid_request", "the query string is over 4096 bytes", None)
    q = {k: v[-1] for k, v in urllib.parse.parse_qs(raw).items()}
    unknown = sorted(set(q) - {"since", "until", "policy", "served_by", "outcome", "limit"})
    if unknown:
        raise ServiceError(400, "invalid_request", f"unknown parameter `{unknown[0]}`",
                           unknown[0])
    limit_text = q.get("limit", str(DEFAULT_LIST))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST:
        raise ServiceError(400, "invalid_request", f"`limit` is 1-{MAX_LIST}", "limit")
    if q.get("outcome") not in (None, *OUTCOMES):
        raise ServiceError(400, "invalid_request", f"`outcome` is one of {', '.join(OUTCOMES)}",
                           "outcome")
    for name in ("since", "until"):
        if name in q:
            q[name] = _utc(q[name], name)
    return Query(since=q.get("since"), until=q.get("until"), policy=q.get("policy"),
                 served_by=q.get("served_by"), outcome=q.get("outcome"),
                 limit=int(limit_text), newest_first=True)


def _utc(text: str, name: str) -> str:
    import datetime as dt

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ServiceError(400, "invalid_request", f"`{name}` is an ISO date or date-time",
                           name) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _visible(r: StoredRecord, caller: Caller) -> bool:
    return caller.policies is None or (r.policy_name is not None
                                       and r.policy_name in caller.policies)


def _summary(r: StoredRecord) -> dict[str, Any]:
    body = r.body
    return {"trace_id": r.trace_id, "at": r.at, "policy_hash": r.policy_hash,
            "policy_name": r.policy_name, "selected": r.selected, "served_by": r.served_by,
            "outcome": r.outcome, "caller": body.get("caller")}

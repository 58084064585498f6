"""What `Router.complete` returns: the provider's response (OpenAI form) with its record, a
stream of chunks whose record is complete when the stream ends, or an error carrying the record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from router.decide.decider import Decision
from router.dispatch.dispatcher import Outcome
from router.dispatch.providers.base import close_iterator
from router.explain.record import to_record
from router.explain.record_model import DecisionRecord


class DispatchError(Exception):
    """A request that produced no response; `record` says everything that happened."""

    code = "dispatch.failed"

    def __init__(self, message: str, record: dict[str, Any],
                 decision: Decision | None = None, outcome: Outcome | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.record = record
        self.decision = decision  # to explain it further (the service's nearest offering)
        self.outcome = outcome  # the attempts made (the service's metrics)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "trace_id": self.record.get("trace_id")}


class NoAdmissibleOffering(DispatchError):
    """Nothing passed the policy's filters: no call was made."""

    code = "dispatch.no_admissible_offering"


class CascadeExhausted(DispatchError):
    """Every hop failed (or the fallback said `fail`); the message lists every attempt."""

    code = "dispatch.cascade_exhausted"


class ProviderRejected(DispatchError):
    """A provider refused the request (4xx other than 429): returned as the provider said it."""

    code = "dispatch.provider_rejected"

    def __init__(self, message: str, record: dict[str, Any], status: int | None,
                 provider_error: Any, decision: Decision | None = None,
                 outcome: Outcome | None = None) -> None:
        super().__init__(message, record, decision, outcome)
        self.status = status
        self.provider_error = provider_error

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "status": self.status, "provider_error": self.provider_error}


def record_of(decision: Decision, trace_id: str, outcome: Outcome | None,
              proofs: bool, config_hash: str = "") -> dict[str, Any]:
    return to_record(decision, trace_id, full_proofs=proofs,
                     dispatch=outcome.to_json() if outcome is not None else None,
                     config_hash=config_hash)


def no_admissible(decision: Decision, trace_id: str,
                  config_hash: str = "") -> NoAdmissibleOffering:
    record = record_of(decision, trace_id, Outcome(stopped_because="nothing passed the filters"),
                       proofs=False, config_hash=config_hash)
    lines = []
    for oid, entries in sorted(record["rejected"].items())[:20]:
        lines.append(f"  {oid}: " + "; ".join(e["reason"] for e in entries))
    more = len(record["rejected"]) - len(lines)
    tail = f"\n  … and {more} more (see the record)" if more > 0 else ""
    return NoAdmissibleOffering(
        f"no offering passes the policy's filters ({len(record['rejected'])} rejected):\n"
        + "\n".join(lines) + tail, record, decision)


def failed(decision: Decision, trace_id: str, outcome: Outcome,
           config_hash: str = "") -> DispatchError:
    record = record_of(decision, trace_id, outcome, proofs=False, config_hash=config_hash)
    f = outcome.failure
    if f is not None and f.kind == "bad_request":
        return ProviderRejected(outcome.stopped_because or "provider refused the request",
                                record, f.status, f.body, decision, outcome)
    lines = [f"  hop {a.hop} {a.offering} retry {a.retry}: {a.outcome}"
             + (f" (HTTP {a.status})" if a.status else "") + (f" — {a.detail}" if a.detail else "")
             for a in outcome.attempts]
    return CascadeExhausted(f"{outcome.stopped_because}:\n" + "\n".join(lines), record,
                            decision, outcome)


@dataclass(frozen=True)
class Completion:
    """A served request: the provider's response in OpenAI chat-completions form."""

    response: dict[str, Any]
    decision: Decision
    outcome: Outcome
    trace_id: str
    config_hash: str = ""

    @property
    def served_by(self) -> str | None:
        return self.outcome.served_by

    def record(self, proofs: bool = False) -> dict[str, Any]:
        return record_of(self.decision, self.trace_id, self.outcome, proofs, self.config_hash)

    def record_model(self, proofs: bool = False) -> DecisionRecord:
        """The record as a typed model (complete once a stream has ended)."""
        return DecisionRecord.of(self.record(proofs))


class CompletionStream:
    """An async iterator of `chat.completion.chunk` objects (and, if the served offering fails
    after the first chunk, one final `{"error": ...}` event). `record()` is complete once the
    iteration has ended. `next_batch` hands out the chunks that arrived together in one list
    (a server writes them in one piece); chunk and batch reads may be mixed."""

    def __init__(self, batches: AsyncIterator[list[dict[str, Any]]], decision: Decision,
                 outcome: Outcome, trace_id: str, config_hash: str = "",
                 on_end: Callable[[], None] | None = None) -> None:
        self._batches = batches
        self._held: deque[dict[str, Any]] = deque()  # chunks of a batch not handed out yet
        self.config_hash = config_hash
        self.decision = decision
        self.outcome = outcome
        self.trace_id = trace_id
        self.finished = False
        self._on_end = on_end

    def __aiter__(self) -> CompletionStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        held = self._held
        while not held:
            held.extend(await self.next_batch())
        return held.popleft()

    async def next_batch(self) -> list[dict[str, Any]]:
        """The next chunks that arrived together (never empty); StopAsyncIteration at the
        end."""
        if self._held:
            batch = list(self._held)
            self._held.clear()
            return batch
        try:
            return await anext(self._batches)
        except StopAsyncIteration:
            self._finish()
            raise

    async def started(self, on_end: Callable[[], None]) -> bool:
        """Wait for the first chunk: False when the stream ended without one (every hop
        failed before answering); else `on_end` runs once the stream ends or is closed."""
        try:
            self._held.extend(await self.next_batch())
        except StopAsyncIteration:
            return False
        self._on_end = on_end
        return True

    async def aclose(self) -> None:
        await close_iterator(self._batches)
        self._finish()

    def _finish(self) -> None:
        """The stream ended (or was closed): the outcome is final; `on_end` runs once."""
        self.finished = True
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()

    @property
    def served_by(self) -> str | None:
        return self.outcome.served_by

    def record(self, proofs: bool = False) -> dict[str, Any]:
        return record_of(self.decision, self.trace_id, self.outcome, proofs, self.config_hash)

    def record_model(self, proofs: bool = False) -> DecisionRecord:
        """The record as a typed model (complete once a stream has ended)."""
        return DecisionRecord.of(self.record(proofs))


class SyncCompletionStream:
    """`CompletionStream` for synchronous callers: the chunks are pulled on the router's loop,
    a batch (those that arrived together) per trip to it."""

    def __init__(self, stream: CompletionStream,
                 submit: Callable[[Any], Future[Any]]) -> None:
        self._stream = stream
        self._submit = submit
        self._held: deque[dict[str, Any]] = deque()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if not self._held:
            try:
                self._held.extend(self._submit(self._stream.next_batch()).result())
            except StopAsyncIteration:
                raise StopIteration from None
        return self._held.popleft()

    def close(self) -> None:
        self._submit(self._stream.aclose()).result()

    @property
    def served_by(self) -> str | None:
        return self._stream.served_by

    def record(self, proofs: bool = False) -> dict[str, Any]:
        return self._stream.record(proofs)

    def record_model(self, proofs: bool = False) -> DecisionRecord:
        return self._stream.record_model(proofs)



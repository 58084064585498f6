"""Tamper evidence: every writer (one per router) chains its records by hash, and with a key
signs its chain head, so an altered, removed or inserted record is found and named.

    hash = sha256(prev_hash ‖ canonical(row body))     prev of a writer's first record: ""
                                                       (canonical: the body's schema's form)
    mac  = HMAC-SHA256(key, writer ‖ seq ‖ hash ‖ base) of the head (last record) per writer
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from router.records.canonical import canonical, packed, sha256_hex

KEY_VARIABLE = "UNHARDCODED_RECORD_KEY"


def body_schema(body: object) -> int:
    """The row schema a record body was written under: it names the canonical form its hash
    was taken over (`canonical`). Changing it in a stored body changes the bytes hashed, so
    the change is found like any other."""
    schema = body.get("schema") if isinstance(body, dict) else None
    return schema if isinstance(schema, int) and not isinstance(schema, bool) else 1


def link(prev: str, body: object) -> str:
    return link_canonical(prev, canonical(body, body_schema(body)))


def link_canonical(prev: str, data: bytes) -> str:
    """`link` of a body whose canonical JSON is `data`."""
    return sha256_hex(prev.encode() + b"\n" + data)


def sealed(prev: str, body: object) -> tuple[str, bytes]:
    """A record body's chain hash and its stored blob, from one canonical serialisation."""
    data = canonical(body, body_schema(body))
    return link_canonical(prev, data), packed(data)


def sign(key: bytes, writer: str, seq: int, head: str, base_seq: int = 0,
         base_hash: str = "") -> str:
    text = f"{writer}\n{seq}\n{head}\n{base_seq}\n{base_hash}"
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Link:
    """A stored record as the chain sees it."""

    trace_id: str
    writer: str
    seq: int
    prev: str
    hash: str
    body: object


@dataclass(frozen=True)
class Head:
    """A writer's last record, and where its chain starts after pruning (`base_*`: the last
    pruned record; 0 and "" when nothing was pruned)."""

    writer: str
    seq: int
    hash: str
    mac: str | None
    base_seq: int = 0
    base_hash: str = ""


@dataclass(frozen=True)
class Finding:
    code: str  # record.altered | record.missing | record.inserted | head.* | chain.unsigned
    writer: str
    trace_id: str | None
    message: str

    def line(self) -> str:
        where = f" `{self.trace_id}`" if self.trace_id else ""
        return f"{self.code}{where} (writer {self.writer}): {self.message}"


def verify(links: Iterable[Link], heads: Iterable[Head], key: bytes | None) -> list[Finding]:
    """Every break in every writer's chain. `links` in (writer, seq) order."""
    found: list[Finding] = []
    last: dict[str, Link] = {}
    heads = list(heads)
    by_writer = {h.writer: h for h in heads}
    for item in links:
        before = last.get(item.writer)
        if link(item.prev, item.body) != item.hash:
            found.append(Finding("record.altered", item.writer, item.trace_id,
                                 "its content does not match its hash"))
        if before is None:
            head = by_writer.get(item.writer)
            base_seq, base_hash = (head.base_seq, head.base_hash) if head else (0, "")
            if item.seq != base_seq + 1:
                found.append(Finding("record.missing", item.writer, item.trace_id,
                                     f"the chain starts at record {item.seq}, not "
                                     f"{base_seq + 1}: earlier records were removed"))
            elif item.prev != base_hash:
                found.append(Finding("record.inserted", item.writer, item.trace_id,
                                     "the first record does not link to the chain's start"))
        else:
            if item.seq == before.seq:
                found.append(Finding("record.inserted", item.writer, item.trace_id,
                                     f"a second record numbered {item.seq}"))
            elif item.seq != before.seq + 1:
                found.append(Finding("record.missing", item.writer, item.trace_id,
                                     f"records {before.seq + 1}..{item.seq - 1} are missing"))
            elif item.prev != before.hash:
                found.append(Finding("record.inserted", item.writer, item.trace_id,
                                     f"it does not link to record {before.seq} "
                                     f"(`{before.trace_id}`)"))
        last[item.writer] = item
    for head in heads:
        tail = last.get(head.writer)
        if tail is None:
            if head.seq == head.base_seq:
                continue  # every record pruned
            found.append(Finding("record.missing", head.writer, None,
                                 f"every record of this writer is gone (head: {head.seq})"))
            continue
        if tail.seq < head.seq:
            found.append(Finding("record.missing", head.writer, tail.trace_id,
                                 f"records after {tail.seq} up to {head.seq} are missing"))
        elif tail.seq > head.seq or tail.hash != head.hash:
            found.append(Finding("record.inserted", head.writer, tail.trace_id,
                                 "the last record is not the head this writer signed"))
        if key is not None:
            if head.mac is None:
                found.append(Finding("head.unsigned", head.writer, None,
                                     "a key is given but this chain head is not signed"))
            elif not hmac.compare_digest(head.mac, sign(key, head.writer, head.seq, head.hash,
                                                        head.base_seq, head.base_hash)):
                found.append(Finding("head.bad_signature", head.writer, None,
                                     "the head's signature does not match the key"))
    for writer, tail in last.items():
        if writer not in by_writer:
            found.append(Finding("record.inserted", writer, tail.trace_id,
                                 "records of a writer that has no chain head"))
    return found

"""Speaking across contract minors: what a peer of an older minor knows, and reading a payload
of a newer minor for what this side knows (``pantau.core.contract`` marks each added field
with the minor that introduced it)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel

from pantau.core.contract import READING_KINDS, ReadingBatch, StreamFault

# Enum values added in a minor: (the minor, what an older collector is sent instead).
NEWER_FAULTS: dict[str, tuple[int, str]] = {StreamFault.VIEW_CHANGED: (1, StreamFault.BLURRED)}
_FAULT_FIELDS = {"streams": ("fault", "faults"), "cameras": ("picture",)}


@cache
def fields_newer_than(model: type[BaseModel], minor: int) -> frozenset[str]:
    """The fields of ``model`` that a peer speaking contract minor ``minor`` does not know."""
    newer: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        added = extra.get("since") if isinstance(extra, dict) else None
        if isinstance(added, int) and added > minor:
            newer.add(name)
    return frozenset(newer)


def reading_model(kind: str) -> type[BaseModel]:
    """The model of one reading kind (``cameras`` -> ``CameraReading``)."""
    annotation = ReadingBatch.model_fields[kind].annotation
    model: type[BaseModel] = annotation.__args__[0]  # type: ignore[union-attr]
    return model


def downgrade_body(kind: str, body: bytes, minor: int) -> bytes:
    """One queued reading's JSON without the fields a minor-``minor`` collector refuses."""
    newer = fields_newer_than(reading_model(kind), minor)
    older = {v: old for v, (added, old) in NEWER_FAULTS.items() if added > minor}
    values = _FAULT_FIELDS.get(kind, ()) if older else ()
    if not newer and not values:
        return body
    data = json.loads(body)
    if not isinstance(data, dict):
        return body
    if newer.isdisjoint(data) and not any(data.get(v) for v in values):
        return body
    kept = {k: v for k, v in data.items() if k not in newer}
    for name in values:
        if isinstance(kept.get(name), str):
            kept[name] = older.get(kept[name], kept[name])
        elif isinstance(kept.get(name), list):  # faults: mapped, each once, in order
            kept[name] = list(dict.fromkeys(older.get(f, f) for f in kept[name]))
    return json.dumps(kept, separators=(",", ":")).encode()


def known_fields(model: type[BaseModel], data: Any) -> tuple[Any, int]:
    """``data`` without the keys ``model`` does not know (at any depth of a batch), and how many
    were left out: a batch of a newer minor is read for what this side knows."""
    if not isinstance(data, dict):
        return data, 0
    known = model.model_fields
    kept = {k: v for k, v in data.items() if k in known}
    dropped = len(data) - len(kept)
    if model is ReadingBatch:
        for kind in READING_KINDS:
            rows = kept.get(kind)
            if isinstance(rows, list):
                inner = reading_model(kind)
                cleaned = [known_fields(inner, row) for row in rows]
                kept[kind] = [row for row, _ in cleaned]
                dropped += sum(n for _, n in cleaned)
    return kept, dropped

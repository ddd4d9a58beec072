"""Walking a raw auction document: every structural problem collected with its path (clearing/document.py
reads the sections through this).

A `Problem` names the path in the document and the offending value or id, e.g.
``bids[3].min_kw: 12000 exceeds kw 10000``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def show(value: Any) -> str:
    """A value as it appears in the document, shortened so a message stays one line."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Checker:
    """Collects problems while walking the raw document, with what the header declares (areas, products,
    the number of blocks) for the sections that refer to it."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.areas: set[str] = set()
        self.products: set[str] = set()
        self.blocks: int | None = None

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def fields(self, obj: Any, path: str, allowed: set[str], required: set[str]) -> bool:
        if not isinstance(obj, dict):
            self.add(path, f"expected an object, got {show(obj)}")
            return False
        for key in obj:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else key, "unknown field")
        for key in sorted(required - obj.keys()):
            self.add(f"{path}.{key}" if path else key, "missing required field")
        return True

    def string(self, obj: dict, key: str, path: str, required: bool = True) -> str | None:
        if key not in obj:
            return None
        value = obj[key]
        if not isinstance(value, str) or (required and not value):
            self.add(f"{path}.{key}" if path else key, f"expected a non-empty string, got {show(value)}")
            return None
        return value

    def number(self, obj: dict, key: str, path: str, *, minimum: float = 0.0, integral: bool = False,
               positive: bool = False) -> float | None:
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}" if path else key
        if not is_number(value):
            self.add(where, f"expected a number, got {show(value)}")
            return None
        if positive and value <= 0:
            self.add(where, f"{show(value)} must be positive")
            return None
        if value < minimum:
            self.add(where, f"{show(value)} is negative" if minimum == 0 else f"{show(value)} is below {minimum}")
            return None
        if integral and value != int(value):
            self.add(where, f"{show(value)} is not a whole number")
            return None
        return float(value)

    def by_block(self, obj: dict, key: str, path: str, blocks: int | None) -> tuple[float, ...] | None:
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}"
        if not isinstance(value, list):
            self.add(where, f"expected a list of numbers, got {show(value)}")
            return None
        if blocks is not None and len(value) != blocks:
            self.add(where, f"has {len(value)} entries, expected one per block ({blocks})")
            return None
        ok = True
        for i, v in enumerate(value):
            if not is_number(v) or v < 0:
                self.add(f"{where}[{i}]", f"{show(v)} is not a non-negative number")
                ok = False
        return tuple(float(v) for v in value) if ok else None

    def enum(self, obj: dict, key: str, path: str, allowed: tuple[str, ...]) -> str | None:
        if key not in obj:
            return None
        value = obj[key]
        if value not in allowed:
            where = f"{path}.{key}" if path else key
            self.add(where, f"unknown value {show(value)} (expected one of {', '.join(allowed)})")
            return None
        return value

    def id_list(self, obj: dict, key: str, path: str, *, known: set[str] | None = None,
                what: str = "") -> list[str] | None:
        """A non-empty list of unique strings, each in `known` when given."""
        if key not in obj:
            return None
        value = obj[key]
        where = f"{path}.{key}" if path else key
        if not isinstance(value, list):
            self.add(where, f"expected a list, got {show(value)}")
            return None
        if not value:
            self.add(where, "is empty")
            return None
        out, seen, ok = [], set(), True
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v:
                self.add(f"{where}[{i}]", f"expected a non-empty string, got {show(v)}")
                ok = False
            elif v in seen:
                self.add(f"{where}[{i}]", f"duplicate {show(v)}")
                ok = False
            elif known is not None and v not in known:
                self.add(f"{where}[{i}]", f"unknown {what} {show(v)}")
                ok = False
            else:
                seen.add(v)
                out.append(v)
        return out if ok else None

    def unique_id(self, obj: dict, path: str, seen: Container[str], what: str,
                  first_at: Mapping[str, int] | None = None) -> str | None:
        """The entry's `id`; None, with the problem, if an earlier entry has it (`first_at`: which one)."""
        value = self.string(obj, "id", path)
        if value is not None and value in seen:
            also = f" (also {path.partition('[')[0]}[{first_at[value]}])" if first_at is not None else ""
            self.add(f"{path}.id", f"duplicate {what} id {show(value)}{also}")
            return None
        return value

    def reference(self, obj: dict, key: str, path: str, known: set[str] | dict[str, Any], what: str,
                  note: str = "") -> str | None:
        """A string naming something declared elsewhere (`known`); None, with the problem, if it is not."""
        value = self.string(obj, key, path)
        if value is not None and value not in known:
            self.add(f"{path}.{key}", f"unknown {what} {show(value)}{note}")
            return None
        return value

    def block(self, value: Any, where: str) -> int | None:
        """A block number in 0..blocks-1."""
        if not is_number(value) or value != int(value):
            self.add(where, f"expected a whole block number, got {show(value)}")
            return None
        if self.blocks is not None and not 0 <= value < self.blocks:
            self.add(where, f"block {show(value)} out of range 0..{self.blocks - 1}")
            return None
        return int(value)

    def entries(self, doc: dict, key: str, allowed: set[str], required: set[str]) -> Iterator[tuple[int, dict, str]]:
        """(position, entry, path) of every entry of the list `doc[key]` that is an object with only
        `allowed` fields and every `required` one; the others get their problems and are skipped."""
        for i, raw in enumerate(self.list_of_objects(doc, key)):
            path = f"{key}[{i}]"
            if self.fields(raw, path, allowed, required):
                yield i, raw, path

    def list_of_objects(self, doc: dict, key: str) -> list[Any]:
        value = doc.get(key, [])
        if not isinstance(value, list):
            self.add(key, f"expected a list, got {show(value)}")
            return []
        return value

"""`retune anonymize`: personal data out of some fields of JSONL records; a malformed line is set aside with why."""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from retune import pii


@dataclass
class JsonlReport:
    """`lines = anonymized + rejected`: every input line is accounted for."""

    lines: int = 0
    anonymized: int = 0
    rejected: int = 0
    found: Counter[str] = field(default_factory=Counter)  # replacements per entity type
    reasons: Counter[str] = field(default_factory=Counter)  # rejected lines per kind of reason


Reject = Callable[[int, str, bytes], None]  # (line number, reason, the raw line without its ending)


def anonymize_jsonl(
    src: BinaryIO, dst: BinaryIO, reject: Reject, fields: list[str], pseudonymizer: pii.Pseudonymizer,
    entities: Iterable[str] | None = None, *, options: pii.PiiOptions | None = None,
) -> JsonlReport:
    """Copy JSONL from `src` to `dst` line by line, replacing the personal data in the strings at `fields` (dotted
    paths, through lists, e.g. "messages.content"); every other field, the key order and the line order are kept.
    A line that is not a JSON object (invalid UTF-8 or JSON, another JSON value, blank) is not written: it goes
    to `reject` with the reason."""
    entities = None if entities is None else list(entities)
    paths = [f.split(".") for f in fields]
    report = JsonlReport()
    for number, raw in enumerate(src, start=1):
        report.lines += 1
        body = raw.rstrip(b"\r\n")
        record, reason = _parse(body)
        if reason is not None:
            report.rejected += 1
            report.reasons[reason.split(":")[0]] += 1
            reject(number, reason, body)
            continue
        record = _anonymize_record(record, paths, pseudonymizer, entities, options, report.found)
        dst.write(json.dumps(record, ensure_ascii=False).encode() + raw[len(body):])
        report.anonymized += 1
    return report


def _anonymize_record(
    record: dict, paths: list[list[str]], pseudonymizer: pii.Pseudonymizer, entities: list[str] | None,
    options: pii.PiiOptions | None, found: Counter[str],
) -> dict:
    # names found by their cue in any field are replaced in all of them: a signature's name also in a greeting
    texts: list[str] = []

    def collect(text: str) -> str:
        texts.append(text)
        return text

    for path in paths:
        _apply_at_path(record, path, collect)
    known = set().union(*(pii.names_in(t, options) for t in texts)) if pii._wants_names(entities) else set()

    def replace(text: str) -> str:
        new, counts = pii.anonymize_text(text, pseudonymizer, entities, known_names=known, options=options)
        found.update(counts)
        return new

    for path in paths:
        record = _apply_at_path(record, path, replace)
    return record


def _apply_at_path(obj: object, path: list[str], fn: Callable[[str], str]) -> object:
    """Apply fn to the string(s) at a dotted path, walking through lists; missing keys are skipped."""
    if isinstance(obj, list):
        return [_apply_at_path(item, path, fn) for item in obj]
    if not path:
        return fn(obj) if isinstance(obj, str) else obj
    if isinstance(obj, dict) and path[0] in obj:
        obj[path[0]] = _apply_at_path(obj[path[0]], path[1:], fn)
    return obj


def _parse(body: bytes) -> tuple[dict | None, str | None]:
    """The record on one line, or why the line is not one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"invalid UTF-8: byte {exc.start + 1}"
    if not text.strip():
        return None, "empty line"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(record, dict):
        return None, f"not a JSON object: a JSON {type(record).__name__}"
    return record, None


class RejectedFile:
    """The rejected lines, one JSON object each: line number, reason and the raw line (base64 when it is not
    UTF-8). They are raw personal data: the file is created only when a line is rejected, readable by its owner
    only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def __call__(self, number: int, reason: str, raw: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # an older file of the same name keeps its mode otherwise
            self._file = os.fdopen(fd, "wb")
        entry: dict[str, object] = {"line": number, "reason": reason}
        try:
            entry["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            entry["raw_base64"] = base64.b64encode(raw).decode()
        self._file.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def rejected_path(output: str, rejected: str | None) -> Path:
    """Where rejected lines go: as asked, else beside the output (OUT.rejected.jsonl), else (output on stdout)
    rejected.jsonl in the current directory."""
    if rejected:
        return Path(rejected)
    if output == "-":
        return Path("rejected.jsonl")
    out = Path(output)
    return out.with_name(out.name.removesuffix(".jsonl") + ".rejected.jsonl")

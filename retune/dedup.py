"""Dedup beyond exact content hashes: the ledger of source files already ingested, and MinHash near-duplicates."""

# - The ledger remembers, per store, each source file's location, fingerprint (size + mtime / ETag) and sha256,
#   written only after the run's data reached main (or when the run had nothing to add), never before: a failed
#   run reads its files again. Each entry names the main commit it was recorded at; an entry whose commit the
#   store no longer knows (the store was recreated) is ignored. A file is skipped when its fingerprint is
#   unchanged, or, when only the fingerprint changed (touched, copied, renamed), when its bytes hash to a sha256
#   the ledger holds.
# - Near-duplicates are found over the parts a run wrote, in source order, after exact dedup (so one process
#   or many give the same answer): a record whose MinHash is within `threshold` (estimated Jaccard of word
#   3-gram shingles of its turns) of an earlier record of the run is a near-duplicate of it. The comparison is
#   within the run, not against main (that would mean hashing all of main at every ingest).

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from retune.sources import IngestReport, SourceCounts, SourceFile, file_sha256

NUM_PERM = 64  # MinHash permutations: enough LSH bands for thresholds up to 0.95, twice as fast as 128
_WORD = re.compile(r"\w+", re.UNICODE)


class SourceLedger:
    """Source files already ingested into one store, in a small JSON file written atomically."""

    def __init__(self, path: Path, scope: str):
        self.path = Path(path)
        self.scope = scope  # the store: a ledger entry says nothing about another store

    def _load_all(self) -> dict[str, dict[str, dict]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text())

    def entries(self) -> dict[str, dict]:
        return self._load_all().get(self.scope, {})

    def split(self, files: list[SourceFile], commit_exists: Callable[[str], bool] = lambda commit: True,
              ) -> tuple[list[SourceFile], list[SourceCounts]]:
        """(files to read, files skipped as already ingested, reported with zero counts and their sha256)."""
        commits = {e.get("commit", "") for e in self.entries().values()}
        valid = {c for c in commits if commit_exists(c)}
        entries = {k: e for k, e in self.entries().items() if e.get("commit", "") in valid}
        known_sha = {e["sha256"]: e for e in entries.values()}
        known_sizes = {e["size"] for e in entries.values()}
        to_read, skipped = [], []
        for file in files:
            entry = entries.get(file.location)
            sha = entry["sha256"] if entry and entry["fingerprint"] == file.fingerprint else None
            if sha is None and file.size in known_sizes:  # maybe the same bytes under a new name or mtime
                candidate = file_sha256(file.location, file.options)
                sha = candidate if candidate in known_sha else None
            if sha is None:
                to_read.append(file)
            else:
                skipped.append(SourceCounts(source=file.location, sha256=sha, skipped=True,
                                            fingerprint=file.fingerprint))
        return to_read, skipped

    def record(self, report: IngestReport, commit: str = "") -> int:
        """Remember every file the run read (call after its data is on main at `commit`); returns how many."""
        done = [s for s in report.read_files if s.sha256 and s.fingerprint]
        if not done:
            return 0
        everything = self._load_all()
        entries = everything.setdefault(self.scope, {})
        for s in done:
            entries[s.source] = {"fingerprint": s.fingerprint, "sha256": s.sha256,
                                 "size": int(s.fingerprint.split(":", 1)[0]), "commit": commit}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(everything, sort_keys=True))
        os.replace(tmp, self.path)
        return len(done)


@dataclass
class NearDuplicates:
    """Near-duplicate records of one run: per source file, and a few examples (conversation ids only)."""

    per_source: dict[str, int] = field(default_factory=dict)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (conversation id, earlier similar one)
    dropped: bool = False

    @property
    def total(self) -> int:
        return sum(self.per_source.values())


def _shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}


def _records_in_order(parts: list[Path]):
    """(content_hash, source, conversation_id, text) per record, in the order the parts hold them."""
    for part in parts:
        table = pq.read_table(part, columns=["content_hash", "source", "conversation_id", "text"])
        hashes = table["content_hash"].to_pylist()
        sources = table["source"].to_pylist()
        cids = table["conversation_id"].to_pylist()
        texts = table["text"].to_pylist()
        start = 0
        for i in range(1, len(hashes) + 1):  # a record's turns are adjacent rows with one hash
            if i == len(hashes) or hashes[i] != hashes[start]:
                yield hashes[start], sources[start], cids[start], "\n".join(texts[start:i])
                start = i


def near_duplicates(report: IngestReport, threshold: float, *, drop: bool) -> NearDuplicates:
    """Find near-duplicate records among the kept ones (first occurrence wins); with `drop`, remove them from
    the parts and count them as duplicates, so in = kept + quarantined + duplicates still holds."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    found = NearDuplicates(dropped=drop)
    first_cid: dict[str, str] = {}
    signatures: dict[str, np.ndarray] = {}  # LSH buckets give candidates; their signatures confirm them
    near: set[str] = set()
    for content_hash, source, cid, text in _records_in_order(report.parts):
        sketch = MinHash(num_perm=NUM_PERM, seed=1)
        sketch.update_batch(list(_shingles(text)))
        similar = [key for key in lsh.query(sketch)
                   if np.mean(signatures[key] == sketch.hashvalues) >= threshold]
        if similar:
            near.add(content_hash)
            found.per_source[source] = found.per_source.get(source, 0) + 1
            if len(found.examples) < 20:
                found.examples.append((cid, first_cid[min(similar)]))
        else:
            lsh.insert(content_hash, sketch)
            first_cid[content_hash] = cid
            signatures[content_hash] = sketch.hashvalues
    by_source = {s.source: s for s in report.sources}
    for source, n in found.per_source.items():
        by_source[source].near_duplicates += n
        if drop:
            by_source[source].kept -= n
            by_source[source].duplicates += n
    if drop and near:
        report.turns = _drop_records(report.parts, near)
        report.parts = [p for p in report.parts if p.exists()]
    return found


def _drop_records(parts: list[Path], hashes: set[str]) -> int:
    """Rewrite the parts without the records of these hashes (an emptied part is deleted); turns left."""
    value_set = pa.array(sorted(hashes))
    turns = 0
    for part in parts:
        table = pq.read_table(part)
        keep = table.filter(pc.invert(pc.is_in(table["content_hash"], value_set=value_set)))
        if keep.num_rows == table.num_rows:
            turns += table.num_rows
        elif keep.num_rows:
            pq.write_table(keep, part)
            turns += keep.num_rows
        else:
            part.unlink()
    return turns

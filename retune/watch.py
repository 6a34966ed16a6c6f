"""Finding new files in the landing locations by content hash, so the same content is announced only once."""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LandedFile:
    path: str
    sha256: str
    size: int


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def find_new_files(landing: list[str], patterns: list[str], seen: set[str]) -> list[LandedFile]:
    """Files under the landing locations matching the patterns whose content was never announced."""
    found: dict[str, LandedFile] = {}
    for location in landing:
        roots = sorted(glob.glob(location)) or [location]
        for root in roots:
            candidates = [Path(root)] if Path(root).is_file() else [
                p for pattern in patterns for p in sorted(Path(root).rglob(pattern)) if p.is_file()
            ]
            for path in candidates:
                sha = file_sha256(path)
                if sha not in seen and sha not in found:  # the same content under two names is one arrival
                    found[sha] = LandedFile(str(path.resolve()), sha, path.stat().st_size)
    return sorted(found.values(), key=lambda f: f.path)


class SeenLedger:
    """The content hashes already announced, in a small JSON file written atomically."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> set[str]:
        if not self.path.exists():
            return set()
        return set(json.loads(self.path.read_text())["seen"])

    def add(self, hashes: set[str]) -> None:
        seen = self.load() | hashes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seen": sorted(seen)}))
        os.replace(tmp, self.path)

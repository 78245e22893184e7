"""What each corpus file looked like when its bytes were last hashed, so that an unchanged file is not read again.

As git's index does: a file whose size, modification and change times and
inode are all as recorded still has the bytes it had then (no write leaves
the change time as it was). Reading and hashing 10,000 files was a quarter of
a one-file update at 100,000 chunks; a stat each costs a fiftieth of that.

A file modified within ``SETTLE_NS`` of being looked at is not recorded: a
second write in the same clock tick could leave its times as they were, so
it is read again next time. The record is a cache in the index folder, not
part of any generation, and a hash it gives is only used where the index
holds a file with that very hash: lost, damaged or stale, it costs a re-read,
never a wrong index.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

FILE = "seen.json"
SETTLE_NS = 2_000_000_000

Stat = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode


def stat_of(path: Path) -> Stat:
    found = path.stat()
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)


class SeenFiles:
    """The record of one index folder: source -> the stat and SHA-256 of its bytes when they were hashed."""

    def __init__(self, index_dir: Path):
        self.path = index_dir / FILE
        self._entries: dict[str, list] = {}
        self._changed = False
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return
        if isinstance(loaded, dict):
            self._entries = {
                source: entry
                for source, entry in loaded.items()
                if isinstance(entry, list) and len(entry) == 5 and all(isinstance(n, int) for n in entry[:4]) and isinstance(entry[4], str)
            }

    def hash_of(self, source: str, stat: Stat) -> str | None:
        """The recorded hash, if the file still looks exactly as it did when it was hashed."""
        entry = self._entries.get(source)
        return entry[4] if entry is not None and tuple(entry[:4]) == stat else None

    def record(self, source: str, stat: Stat, sha256: str, looked_at_ns: int) -> None:
        """Remember a file's hash with the stat taken before its bytes were read, if it had settled by then."""
        settled = max(stat[1], stat[2]) < looked_at_ns - SETTLE_NS
        entry = [*stat, sha256] if settled else None
        if self._entries.get(source) != entry:
            self._changed = True
            if entry is None:
                self._entries.pop(source, None)
            else:
                self._entries[source] = entry

    def keep_only(self, sources: set[str]) -> None:
        gone = set(self._entries) - sources
        for source in gone:
            del self._entries[source]
        self._changed |= bool(gone)

    def save(self) -> None:
        """Written aside and renamed into place, and only when something changed."""
        if not self._changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        aside = self.path.with_name(f".{FILE}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with open(aside, "w", encoding="utf-8") as handle:
                json.dump(self._entries, handle, ensure_ascii=False, separators=(",", ":"))
            os.replace(aside, self.path)
        finally:
            aside.unlink(missing_ok=True)
        self._changed = False

"""Extracted texts kept in the index folder, so that a citation is checked without the original file.

``index/extracts/<EXTRACTOR>/<sha256 of the file's bytes>.json`` holds a
file's text and page offsets. Named by content, an extraction is written once
and never changes, so every index generation shares it: an unchanged PDF is
not extracted again on the next build, and ``qa show`` reads what the index
quoted even after the PDF is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

from qa.stages.ingest.base import EXTRACTOR, Extraction

FOLDER = "extracts"


class ExtractStore:
    def __init__(self, index_dir: Path, extractor: str = EXTRACTOR):
        self.root = index_dir / FOLDER
        self.folder = self.root / extractor

    def _path(self, sha256: str) -> Path:
        return self.folder / f"{sha256}.json"

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def load(self, sha256: str) -> Extraction | None:
        try:
            stored = json.loads(self._path(sha256).read_text(encoding="utf-8"))
            return Extraction(stored["text"], tuple(stored["pages"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, sha256: str, extraction: Extraction) -> None:
        """Written aside and renamed into place: a reader sees the whole extraction or none."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._path(sha256)
        aside = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(aside, "w", encoding="utf-8") as handle:
            json.dump({"text": extraction.text, "pages": list(extraction.pages)}, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(aside, target)

    def prune(self, keep: set[str]) -> None:
        """Remove the extractions no kept generation cites, and those of other extractor versions."""
        if not self.root.is_dir():
            return
        for other in self.root.iterdir():
            if other != self.folder:
                shutil.rmtree(other, ignore_errors=True)
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name.removesuffix(".json") not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()

"""Checksums of every file in a folder, so that a damaged index or model export is found, never read.

A flipped byte in a FAISS file loads without complaint and silently ranks
the wrong passages; a truncated ONNX model makes every question slow. So each
writer records the size and SHA-256 of every file it wrote (whatever the
storage: the list is made by walking the folder), and readers compare before
they trust them: sizes always (a stat each), contents where a reader asks for it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict


class FileSum(BaseModel):
    model_config = ConfigDict(frozen=True)

    bytes: int
    sha256: str


def file_sum(path: Path) -> FileSum:
    with open(path, "rb") as handle:
        return FileSum(bytes=os.fstat(handle.fileno()).st_size, sha256=hashlib.file_digest(handle, "sha256").hexdigest())


def folder_sums(folder: Path, skip: tuple[str, ...] = (), known: dict[str, FileSum] | None = None) -> dict[str, FileSum]:
    """Every file under ``folder`` (relative POSIX path -> size and hash), but those named in ``skip``.

    ``known`` gives the sums of files the caller shares with a folder it
    already checked (hard links to immutable files): they are not read again.
    """
    known = known or {}
    sums = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in skip:
            sums[name] = known[name] if name in known else file_sum(path)
    return sums


def first_problem(folder: Path, sums: dict[str, FileSum], contents: bool | int = True) -> str | None:
    """What is wrong with the first damaged file, as "<file> is missing" and the like; None if all match.

    Sizes are compared first, for every file, so that a truncated or missing
    file is named without reading the others. ``contents`` hashes every file
    (True), none (False), or those of at most that many bytes (an int).
    """
    for name, expected in sums.items():
        try:
            size = (folder / name).stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as error:
            return f"{name} cannot be read ({error.strerror or error})"
        if size != expected.bytes:
            return f"{name} has {size} bytes, not the {expected.bytes} written (truncated or overwritten)"
    if contents is not False:
        for name, expected in sums.items():
            if contents is not True and expected.bytes > contents:
                continue
            try:
                actual = file_sum(folder / name).sha256
            except OSError as error:
                return f"{name} cannot be read ({error.strerror or error})"
            if actual != expected.sha256:
                return f"{name} does not match its checksum (its bytes changed after it was written)"
    return None

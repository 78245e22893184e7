"""Which files of a corpus folder are read: hidden ones never, ignore files and globs respected.

``.gitignore`` and ``.qaignore`` are read in every folder and apply below it,
as git applies them (a deeper file overrides a shallower one, ``!pattern``
re-includes); ``pathspec`` implements git's matching rules, which are subtler
than ``fnmatch`` (``docs/`` matches a folder, ``**`` spans folders, a pattern
with a slash is anchored). ``--include``/``--exclude`` use the same syntax on
the path relative to the corpus root.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pathspec import GitIgnoreSpec

from qa.errors import CorpusError

IGNORE_FILES = (".gitignore", ".qaignore")


def _spec(patterns: Sequence[str]) -> GitIgnoreSpec | None:
    return GitIgnoreSpec.from_lines(patterns) if patterns else None


def _read_ignore_files(folder: Path) -> GitIgnoreSpec | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines.extend((folder / name).read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError:
            continue
    return _spec(lines)


def _ignored(levels: list[tuple[str, GitIgnoreSpec]], relative: str, is_dir: bool) -> bool:
    """Git's verdict: the deepest ignore file with a rule for the path decides."""
    verdict = False
    for base, spec in levels:
        inside = relative[len(base) :] if base else relative
        result = spec.check_file(inside + ("/" if is_dir else ""))
        if result.include is not None:
            verdict = result.include
    return verdict


def find_files(corpus_dir: Path, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """``(source id, path)`` of every file to read, sorted by id.

    Hidden files and folders are left out, as are files that an ignore file or
    ``exclude`` matches and, when ``include`` is given, files it does not match.
    Whether a file's format can be read is the caller's question: every file
    chosen here is either read or reported as skipped.
    """
    if not corpus_dir.exists():
        raise CorpusError(f"corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus path {corpus_dir} is not a folder")
    wanted, unwanted = _spec(include), _spec(exclude)
    found: list[tuple[str, Path]] = []
    levels_by_folder: dict[str, list[tuple[str, GitIgnoreSpec]]] = {}
    for folder, subfolders, files in os.walk(corpus_dir):
        here = Path(folder)
        relative_folder = here.relative_to(corpus_dir).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        levels = list(levels_by_folder.get(prefix, []))
        spec = _read_ignore_files(here)
        if spec is not None:
            levels.append((prefix, spec))
        kept = []
        for name in sorted(subfolders):
            relative = prefix + name
            if name.startswith(".") or _ignored(levels, relative, True) or (unwanted and unwanted.match_file(relative + "/")):
                continue
            levels_by_folder[relative + "/"] = levels
            kept.append(name)
        subfolders[:] = kept
        for name in files:
            relative = prefix + name
            if name.startswith(".") or _ignored(levels, relative, False):
                continue
            if unwanted is not None and unwanted.match_file(relative):
                continue
            if wanted is not None and not wanted.match_file(relative):
                continue
            path = here / name
            if path.is_file():
                found.append((relative, path))
    return sorted(found)

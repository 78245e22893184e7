"""Where qa keeps what is not the user's: caches, logs, state and the user's config file.

One place, so that every part agrees and a user (or a test) moves them all at
once. ``platformdirs`` gives each platform's convention (XDG on Linux,
``~/Library`` on macOS, ``%LOCALAPPDATA%`` on Windows) rather than a dot
folder in the home directory; ``QA_CACHE_DIR`` still overrides the cache,
for machines that keep it on a bigger disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "qa"


def cache_dir() -> Path:
    """Rebuildable data: parsed dictionaries."""
    return Path(os.environ.get("QA_CACHE_DIR") or platformdirs.user_cache_dir(APP, appauthor=False))


def log_dir() -> Path:
    """The question log and the feedback log."""
    return Path(platformdirs.user_log_dir(APP, appauthor=False))


def state_dir() -> Path:
    """What a session leaves for the next: the chat's input history."""
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def config_dir() -> Path:
    """Where the user's own ``qa.toml`` lives, used when no folder up from the working one has one."""
    return Path(platformdirs.user_config_dir(APP, appauthor=False))

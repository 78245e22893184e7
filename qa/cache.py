"""The per-machine cache folder: parsed dictionaries and exported models live here once, for every index.

``QA_CACHE_DIR`` moves it; otherwise it is the platform's user cache folder
(``~/.cache/qa`` on Linux), as platformdirs names it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    configured = os.environ.get("QA_CACHE_DIR")
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("qa", appauthor=False))

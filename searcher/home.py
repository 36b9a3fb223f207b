"""Where indexes live: a per-user data directory holding named indexes.

`--index notes` is the index named "notes" in the home directory: $SEARCHER_HOME, else $XDG_DATA_HOME/searcher,
else ~/.local/share/searcher. Anything with a slash (or starting with "." or "~") is a path: `--index ./idx`,
`--index /data/idx`. With no --index (and no $SEARCHER_INDEX), the index is the one named "default", so
`cd ~ && searcher query ...` finds the same index as `cd ~/work && searcher query ...`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InvalidInputError

DEFAULT_NAME = "default"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def home() -> Path:
    """The folder of named indexes."""
    if os.environ.get("SEARCHER_HOME"):
        return Path(os.environ["SEARCHER_HOME"]).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "searcher"


def resolve(index: str | Path | None) -> Path:
    """The directory of an index given by name or path (None: the default index)."""
    if index is None:
        return home() / DEFAULT_NAME
    if isinstance(index, Path):
        return index.expanduser()
    if "/" in index or os.sep in index or index.startswith((".", "~")):
        return Path(index).expanduser()
    if not _NAME.fullmatch(index):
        raise InvalidInputError(f"{index!r} is not an index name (letters, digits, '.', '_', '-'); "
                                "to use a folder, write it as a path, e.g. ./name")
    return home() / index


def named_indexes() -> list[Path]:
    """The indexes in the home directory, by name."""
    from .store import is_index_dir

    root = home()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_index_dir(p))

"""Where indexes live: a per-user data directory holding named indexes.

`--index notes` is the index named "notes" in the home directory: $SEARCHER_HOME, else $XDG_DATA_HOME/searcher,
else ~/.local/share/searcher. Anything with a slash (or starting with "." or "~") is a path: `--index ./idx`,
`--index /data/idx`. With no --index (and no $SEARCHER_INDEX), the index is the one named "default", so
`cd ~ && searcher query ...` finds the same index as `cd ~/work && searcher query ...`.

The home also holds one copy of each exported query encoder (`.encoders/encoder-<weights id>`), which every
index of that model hard-links instead of carrying its own ~90 MB copy. A shared encoder whose files no index
links any more (every link count 1) is collected by `collect_encoders`. Where a hard link is not possible (the
index on another filesystem), the index keeps its own copy and nothing is shared.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import orjson

from .atomic import write_atomic
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
        raise InvalidInputError(
            f"{index!r} is not an index name (letters, digits, '.', '_', '-'); "
            "to use a folder, write it as a path, e.g. ./name"
        )
    return home() / index


def named_indexes() -> list[Path]:
    """The indexes in the home directory, by name."""
    from .manifest import is_index_dir

    root = home()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_index_dir(p))


ENCODERS = ".encoders"  # never an index name: names start with a letter or digit


def shared_encoders() -> Path:
    return home() / ENCODERS


def adopt_encoder(target: Path) -> bool:
    """Give an index the shared copy of the encoder `target.name` (hard links, then one rename); False when
    there is no shared copy or it cannot be linked from there."""
    shared = shared_encoders() / target.name
    if not (shared / "encoder.json").is_file():
        return False
    return _link_tree(shared, target)


def share_encoder(exported: Path) -> None:
    """Offer an index's freshly exported encoder to the other indexes (no-op when one is shared already or the
    home is on another filesystem)."""
    shared = shared_encoders() / exported.name
    if (shared / "encoder.json").is_file():
        return
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    _link_tree(exported, shared)


def collect_encoders() -> list[str]:
    """Delete the shared encoders no index links any more; their names."""
    from .manifest import ENCODER_NAME

    gone: list[str] = []
    root = shared_encoders()
    if not root.is_dir():
        return gone
    for entry in root.iterdir():
        if not ENCODER_NAME.fullmatch(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            files = [f for f in entry.iterdir() if f.is_file() and not f.is_symlink()]
            if all(f.stat().st_nlink == 1 for f in files):
                shutil.rmtree(entry)
                gone.append(entry.name)
        except OSError:
            continue
    return gone


def _link_tree(src: Path, dst: Path) -> bool:
    """Hard-link the files of `src` into a new folder `dst` (built beside it, then renamed into place)."""
    tmp = dst.with_name(f"{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for f in src.iterdir():
            if f.is_file() and not f.is_symlink():
                os.link(f, tmp / f.name)
        os.replace(tmp, dst)
        return True
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno not in (
            errno.EXDEV,
            errno.EPERM,
            errno.EMLINK,
            errno.ENOTEMPTY,
            errno.EEXIST,
            errno.EACCES,
            errno.EROFS,
            errno.ENOSPC,
        ):
            raise
        return False


CHOICES = "document-encoders.json"  # in the shared encoders' folder: the measured path per model and CPU


def remembered_choice(weights_id: str) -> dict | None:
    """The document-encoder choice last measured for this model (any CPU: the caller checks it is this one)."""
    try:
        record = orjson.loads((shared_encoders() / CHOICES).read_bytes()).get(weights_id)
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


STARTS = "model-starts.json"  # beside CHOICES: seconds this machine took to load each model (torch included)


def remembered_start(weights_id: str) -> float | None:
    """Seconds loading this model took on this machine when last timed (encoder_choice.small_edit_limit), or None."""
    try:
        seconds = orjson.loads((shared_encoders() / STARTS).read_bytes()).get(weights_id)
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) else None


def remember_start(weights_id: str, seconds: float) -> None:
    """Keep the time a model took to load (best effort, as remember_choice)."""
    path = shared_encoders() / STARTS
    try:
        try:
            starts = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            starts = {}
        if not isinstance(starts, dict):
            starts = {}
        starts[weights_id] = round(seconds, 2)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, orjson.dumps(starts, option=orjson.OPT_INDENT_2))
    except OSError:
        pass


def remember_choice(weights_id: str, record: dict) -> None:
    """Keep a measured choice for new indexes of the same model (best effort: a read-only home keeps nothing)."""
    path = shared_encoders() / CHOICES
    try:
        try:
            choices = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            choices = {}
        if not isinstance(choices, dict):
            choices = {}
        choices[weights_id] = record
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, orjson.dumps(choices, option=orjson.OPT_INDENT_2))
    except OSError:
        pass

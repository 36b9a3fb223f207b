"""Keep an index in step with a folder: watch it (watchdog) and run an incremental update once it goes quiet.

Every change under the source starts (or restarts) a short quiet period, `debounce` seconds; when it ends, one
`build_index` run diffs the whole source against the index and publishes a new generation. Rescanning the
source rather than applying single events is what makes editors' save-by-rename (write `x.tmp`, rename it
over `x`), bulk copies and `git checkout` come out right: the scan compares size, mtime and ctime, so a burst of
events costs one cheap walk plus the embedding of what really changed. Events inside the index folder (an
index kept under its own source) and read-only events (inotify's open/close-no-write, which our own scan
causes) are ignored, so an update never triggers the next.

The watched folder itself can go and come back (deleted and made again, a disk unmounted and mounted): its
inotify watch dies with it, so the folder's identity (device and inode) is checked every 0.2 s, and a new one is
watched again and scanned at once. While it is gone, updates wait (one `on_error` says so).

The model is loaded once, on the first change that needs it, and kept for the next. Left out: polling
filesystems that send no events (network mounts); pass `observer=` a watchdog PollingObserver there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .config import IndexConfig
from .encoder import Encoder, load_encoder
from .errors import SearcherError
from .home import resolve as resolve_index
from .indexer import IndexReport, Progress, build_index

log = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 0.5  # quiet time after the last change before an update runs
_CHANGES = {"created", "modified", "moved", "deleted", "closed"}  # watchdog event types that can change a file


def watch(
    source: Path | str,
    index_dir: Path | str | None = None,
    config: IndexConfig | None = None,
    *,
    stop: threading.Event,
    encoder: Encoder | None = None,
    debounce: float = DEBOUNCE_SECONDS,
    on_update: Callable[[IndexReport], None] | None = None,
    on_error: Callable[[SearcherError], None] | None = None,
    progress: Progress | None = None,
    observer=None,
) -> None:
    """Update the index of `source` after every burst of changes until `stop` is set. The caller indexes first
    (build_index); `watch` only follows changes. Each update's report goes to `on_update`; a SearcherError in an
    update (a file that vanished mid-read, a full disk) goes to `on_error` and watching goes on (the index is as
    it was), without `on_error` it is raised."""
    try:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
    except ImportError:
        raise SearcherError("watching a folder needs the watchdog package: pip install watchdog") from None

    root = Path(source).expanduser().resolve()
    index_path = Path(os.path.realpath(resolve_index(index_dir)))
    folder = root if root.is_dir() else root.parent
    changed = threading.Event()
    last_change = [0.0]

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            if event.event_type not in _CHANGES:
                return
            paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
            if not any(p and _relevant(Path(p), root, index_path) for p in paths):
                return
            last_change[0] = time.monotonic()
            changed.set()

    recursive = root.is_dir()
    observer = observer or Observer()
    observer.schedule(Handler(), str(folder), recursive=recursive)
    observer.start()
    watched = _identity(folder)
    loaded: dict[str, Encoder] = {}

    def load_model(name: str) -> Encoder:
        if name not in loaded:
            loaded[name] = load_encoder(name)
        return loaded[name]

    try:
        while not stop.is_set():
            now = _identity(folder)
            if now != watched:  # gone, or a new folder under the same name: its old watch is dead
                if now is None:
                    if watched is not None and on_error is not None:
                        on_error(SearcherError(f"{folder} is gone; waiting for it to come back"))
                else:
                    observer.unschedule_all()
                    observer.schedule(Handler(), str(folder), recursive=recursive)
                    last_change[0] = time.monotonic() - debounce
                    changed.set()
                watched = now
            if now is None or not changed.wait(timeout=0.2):
                if now is None:
                    stop.wait(0.2)
                continue
            quiet = time.monotonic() - last_change[0]
            if quiet < debounce:
                stop.wait(debounce - quiet)
                continue
            changed.clear()
            try:
                report = build_index(
                    root, index_path, config, encoder=encoder, progress=progress, load_model=load_model
                )
            except SearcherError as e:
                if on_error is None:
                    raise
                on_error(e)
                continue
            if on_update is not None:
                on_update(report)
    finally:
        observer.stop()
        observer.join(timeout=5)


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _relevant(path: Path, source: Path, index_dir: Path) -> bool:
    if path == index_dir or index_dir in path.parents:
        return False
    return path == source or source in path.parents

"""Keep an index in step with a folder: watch it (watchdog) and run an incremental update once it goes quiet.

Every change under the source starts (or restarts) a short quiet period, `debounce` seconds; when it ends, one
`build_index` run looks at every path the burst's events named (`changed`: created, written, deleted, either
side of a rename, a folder and what is under it) and publishes a new generation. The events say where to look,
not what happened: each named path is compared with the index as a scan would (size, mtime and ctime, then the
bytes' hash), so editors' save-by-rename (write `x.tmp`, rename it over `x`), bulk copies and `git checkout` come
out right, and a one-file edit in a large folder costs no walk of it. A folder that came back is scanned whole,
as is what build_index scans whole anyway (more than indexer.MAX_CHANGED paths, an ignore file among them). A
change whose event is lost (inotify's queue overflowing under a flood) waits for that file's next event or the
next whole scan; `searcher update` re-scans everything. Events inside the index folder (an index kept under its
own source), read-only events (inotify's open/close-no-write, which our own scan causes) and a folder's "modified"
(its entries' own events follow) are ignored, so an update never triggers the next.

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
    named: set[Path] = set()  # the paths this burst's events named; the root among them: scan it whole
    lock = threading.Lock()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event) -> None:
            if event.event_type not in _CHANGES or (event.is_directory and event.event_type == "modified"):
                return
            paths = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
            relevant = [Path(p) for p in paths if p and _relevant(Path(p), root, index_path)]
            if not relevant:
                return
            with lock:
                named.update(relevant)
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
                    with lock:
                        named.add(root)  # the whole source
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
            with lock:
                paths = sorted(named)
                named.clear()
            try:
                report = build_index(
                    root,
                    index_path,
                    config,
                    encoder=encoder,
                    progress=progress,
                    load_model=load_model,
                    changed=None if root in paths else paths,
                )
            except SearcherError as e:
                with lock:
                    named.add(root)  # what this run did not take in, the next one finds by scanning whole
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

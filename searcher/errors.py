"""The one exception family of searcher.

Every error a user can cause is a `SearcherError` whose message is one sentence saying what was wrong and
what to do about it. The CLI prints that sentence and exits non-zero; library users catch the subclass they
care about. `assert` is reserved for internal invariants.
"""

# The name searcher is installed by (`searcher` on PyPI is an unrelated package): install hints name it.
DISTRIBUTION = "searcher-local"


def install_hint(extra: str) -> str:
    """The command that installs one of searcher's extras (`serve`, `qdrant`, `ray`)."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


class SearcherError(Exception):
    """Base class: something the user can fix (bad input, missing index, unusable model)."""


class IndexNotFoundError(SearcherError):
    """There is no index at the given directory."""


class IndexFormatError(SearcherError):
    """The index exists but cannot be read (unknown format version, missing or damaged files)."""


class IndexBusyError(SearcherError):
    """Another process is writing the same index."""


class ModelError(SearcherError):
    """The embedding model cannot be loaded or does not match the index."""


class InvalidInputError(SearcherError, ValueError):
    """An argument or input file is not usable (empty query, k < 1, empty folder, ...)."""

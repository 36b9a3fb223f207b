"""The `searcher` command: parse options, call the library, print. No logic lives here.

One module per family of commands (indexing, querying, training, serving), the group and what they share in
common.py; output rendering lives in render.py.

Library errors (`SearcherError`) become one line on stderr and exit status 1, translated once in
`_Group.invoke`. Heavy modules (numpy, faiss, torch) are imported inside the commands that need them.
"""

from __future__ import annotations

from . import indexing, querying, serving, training  # noqa: F401 - each registers its commands on the group
from .common import _encoder_choice, cli

__all__ = ["cli", "_encoder_choice"]

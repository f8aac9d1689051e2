"""The project's exception types.

Callers catch one base class (``HeisdError``) for anything the engine rejects, while the
subclasses also derive from the builtin a plain-Python caller would expect
(``ValueError`` for bad input, ``KeyError`` for a missing task), so generic handlers
keep working.
"""
from __future__ import annotations


class HeisdError(Exception):
    """Base class of every error raised deliberately by heisd_ros."""


class InvalidInputError(HeisdError, ValueError):
    """Input that cannot be processed: NaN/inf, wrong shape or dtype, mismatched dimension."""


class UnknownTaskError(HeisdError, KeyError):
    """No retrieval collection exists for the requested instruction."""

    def __str__(self) -> str:  # KeyError would repr() the message; keep it readable
        return str(self.args[0]) if self.args else "unknown task"


class EmptyIndexError(HeisdError):
    """A retrieval collection exists but holds no entries to query."""


class CorruptFileError(HeisdError):
    """A saved artefact failed verification at load: bad checksum, version or missing/truncated file."""

"""The one exception tree of mistrec.

    MistrecError                 base class: every error mistrec raises on bad input
     ├── ConfigError             a YAML file or an option is wrong (unknown key, bad value)
     ├── DataError               an input file or its rows are wrong (names file, row, column, value)
     │    └── LeakageError       a split or a history would leak test or future information
     └── ArtifactError           a prepared directory or run directory is missing a piece or mismatched

The command line turns each of these into one line on stderr and a non-zero exit; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["ArtifactError", "ConfigError", "DataError", "LeakageError", "MistrecError"]


class MistrecError(Exception):
    """Base class of every error mistrec raises on bad input."""


class ConfigError(MistrecError):
    """A configuration file or option is invalid."""


class DataError(MistrecError):
    """Input data is invalid: the message names the file, the row, the column and the value."""


class LeakageError(DataError):
    """A split or history would let the model see test labels or the future."""


class ArtifactError(MistrecError):
    """A prepared dataset or run directory is incomplete or was written by an incompatible version."""

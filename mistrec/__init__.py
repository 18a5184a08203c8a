"""mistrec: Multi-scenario Interest Transfer for RECommendation.

The public API; the package layers are `data` -> `features` -> `models` -> `train` -> `eval` -> `cli`/`serve`.
"""

from mistrec.errors import ArtifactError, ConfigError, DataError, LeakageError, MistrecError

__version__ = "0.1.0"

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "LeakageError",
    "MistrecError",
    "__version__",
]

"""Synapse's state-group storage on mxstate.

`install()` makes Synapse build its state stores on mxstate: it must run
before Synapse builds its data stores (the launcher `python -m
mxstate_synapse -c homeserver.yaml` does it). The database is configured by
a block in homeserver.yaml::

    mxstate:
      path: /var/lib/mxstate        # the database directory (one process), or
      # server: unix:/run/mxstate.sock   # a running `mxstate serve` (workers)
      cache_mb: 256                 # optional: engine caches
      sync_writes: true             # optional, with `path`: fsync every write (default)

Workers start with `python -m mxstate_synapse.worker -c homeserver.yaml -c
worker.yaml`; every process names the same `server`.
"""

from ._native import (  # noqa: F401
    BackendError,
    CapacityError,
    ConflictError,
    CorruptError,
    InternalError,
    InvalidInputError,
    MxStateError,
    NotFoundError,
    Store,
    __version__,
)
from .install import TESTED_SYNAPSE, install  # noqa: F401

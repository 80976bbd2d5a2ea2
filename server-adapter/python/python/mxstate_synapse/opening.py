"""Opening the mxstate database of a homeserver."""

import logging
import os
import shutil
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from synapse.config._base import ConfigError

from ._native import MxStateError, Store

if TYPE_CHECKING:
    from synapse.server import HomeServer

logger = logging.getLogger(__name__)

#: Test mode: every homeserver gets a fresh database under this directory.
TEST_DIR_ENV = "MXSTATE_SYNAPSE_TEST_DIR"
#: Test mode: a file that records each database opened (proof of use).
TEST_LOG_ENV = "MXSTATE_SYNAPSE_TEST_LOG"


class CountingStore:
    """A `Store` that counts the calls made to it (test mode)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.calls = 0
        #: Auth chain questions answered (`auth_chain`, `auth_chain_difference`).
        self.auth_answers = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if name in ("auth_chain", "auth_chain_difference"):
                self.auth_answers += 1
            return attr(*args, **kwargs)

        return counted


def _close_test_store(store: CountingStore, path: str, log: str) -> None:
    try:
        store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if log:
            with open(log, "a") as f:
                f.write(f"close {os.getpid()} {path} auth={store.auth_answers} calls={store.calls}\n")


def open_store(hs: "HomeServer", owner: object) -> Any:
    """The database configured for `hs` (or, in test mode, a fresh one that
    goes away with `owner`)."""
    config = getattr(hs.config, "mxstate", None)
    test_dir = os.environ.get(TEST_DIR_ENV)
    if config is not None and config.enabled and config.server is not None:
        try:
            store = Store.connect(config.server, secret_file=config.secret_file, connections=config.connections,
                                  timeout_s=config.timeout_s, cache_mb=config.cache_mb)
        except MxStateError as e:
            raise ConfigError(f"mxstate: cannot reach the state service at {config.server}: {e}",
                              ("mxstate", "server")) from e
        logger.info("mxstate: state database served by %s", config.server)
        return store
    if config is not None and config.enabled:
        path = config.path
        try:
            store = Store(path, create=True, cache_mb=config.cache_mb, sync_writes=config.sync_writes)
        except MxStateError as e:
            raise ConfigError(f"mxstate: cannot open the state database at {path}: {e}", ("mxstate", "path")) from e
        logger.info("mxstate: state database at %s", path)
        return store
    if test_dir:
        os.makedirs(test_dir, exist_ok=True)
        path = tempfile.mkdtemp(prefix="hs-", dir=test_dir)
        store = CountingStore(Store(path, create=True, cache_mb=16, sync_writes=False))
        log = os.environ.get(TEST_LOG_ENV, "")
        if log:
            with open(log, "a") as f:
                f.write(f"open {os.getpid()} {path}\n")
        weakref.finalize(owner, _close_test_store, store, path, log)
        return store
    raise ConfigError(
        "mxstate: the Synapse integration is installed but homeserver.yaml has no `mxstate:` block "
        "with the database `path` or the service's `server` address",
        ("mxstate",),
    )

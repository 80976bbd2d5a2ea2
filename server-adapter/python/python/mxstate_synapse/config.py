"""The `mxstate:` block of homeserver.yaml, as a Synapse config section."""

from typing import Any, Optional

from synapse.config._base import Config, ConfigError


class MxStateConfig(Config):
    """`hs.config.mxstate`: where the state database is and how to open it."""

    section = "mxstate"

    def read_config(self, config: dict[str, Any], **kwargs: Any) -> None:
        block = config.get("mxstate")
        self.enabled: bool = block is not None
        self.path: Optional[str] = None
        self.cache_mb: int = 256
        self.sync_writes: bool = True
        if block is None:
            return
        if not isinstance(block, dict):
            raise ConfigError("mxstate: expected a mapping with at least `path`", ("mxstate",))
        unknown = set(block) - {"path", "cache_mb", "sync_writes"}
        if unknown:
            raise ConfigError(f"mxstate: unknown settings {sorted(unknown)}", ("mxstate",))
        path = block.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("mxstate: `path` (the database directory) is required", ("mxstate", "path"))
        self.path = path
        cache_mb = block.get("cache_mb", 256)
        if not isinstance(cache_mb, int) or isinstance(cache_mb, bool) or cache_mb <= 0:
            raise ConfigError("mxstate: `cache_mb` must be a positive integer", ("mxstate", "cache_mb"))
        self.cache_mb = cache_mb
        sync_writes = block.get("sync_writes", True)
        if not isinstance(sync_writes, bool):
            raise ConfigError("mxstate: `sync_writes` must be true or false", ("mxstate", "sync_writes"))
        self.sync_writes = sync_writes
        worker_app = config.get("worker_app")
        if worker_app not in (None, "synapse.app.homeserver"):
            raise ConfigError(
                "mxstate: Synapse workers cannot share an mxstate database yet "
                f"(this process is a {worker_app!r} worker); run a single Synapse process",
                ("worker_app",),
            )

"""The `mxstate:` block of homeserver.yaml, as a Synapse config section."""

from typing import Any, Optional

from synapse.config._base import Config, ConfigError

_EMBEDDED = {"path", "cache_mb", "sync_writes"}
_SERVICE = {"server", "secret_file", "connections", "timeout_s", "cache_mb"}


def _positive_int(block: dict, name: str, default: int) -> int:
    value = block.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"mxstate: `{name}` must be a positive integer", ("mxstate", name))
    return value


class MxStateConfig(Config):
    """`hs.config.mxstate`: where the state database is and how to reach it.

    Either `path`, a database directory this process opens (one Synapse
    process), or `server`, the address of a running `mxstate serve` that
    every process of a worker deployment shares."""

    section = "mxstate"

    def read_config(self, config: dict[str, Any], **kwargs: Any) -> None:
        block = config.get("mxstate")
        self.enabled: bool = block is not None
        self.path: Optional[str] = None
        self.server: Optional[str] = None
        self.secret_file: Optional[str] = None
        self.connections: int = 4
        self.timeout_s: float = 60.0
        self.cache_mb: int = 256
        self.sync_writes: bool = True
        if block is None:
            return
        if not isinstance(block, dict):
            raise ConfigError("mxstate: expected a mapping with `path` or `server`", ("mxstate",))
        if "path" in block and "server" in block:
            raise ConfigError(
                "mxstate: give either `path` (a database this process opens) or `server` "
                "(the address of `mxstate serve`), not both",
                ("mxstate",),
            )
        if "server" in block:
            self._read_service(block)
        else:
            self._read_embedded(block, config)

    def _read_embedded(self, block: dict, config: dict[str, Any]) -> None:
        unknown = set(block) - _EMBEDDED
        if unknown:
            raise ConfigError(f"mxstate: unknown settings {sorted(unknown)}", ("mxstate",))
        path = block.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(
                "mxstate: `path` (the database directory) or `server` (the address of `mxstate serve`) is required",
                ("mxstate", "path"),
            )
        self.path = path
        self.cache_mb = _positive_int(block, "cache_mb", 256)
        sync_writes = block.get("sync_writes", True)
        if not isinstance(sync_writes, bool):
            raise ConfigError("mxstate: `sync_writes` must be true or false", ("mxstate", "sync_writes"))
        self.sync_writes = sync_writes
        worker_app = config.get("worker_app")
        if worker_app not in (None, "synapse.app.homeserver"):
            raise ConfigError(
                "mxstate: a database directory (`path`) belongs to one process, and this process is a "
                f"{worker_app!r} worker: run `mxstate serve --db DIR --listen unix:PATH` and give every "
                "process `server: unix:PATH` instead",
                ("worker_app",),
            )

    def _read_service(self, block: dict) -> None:
        unknown = set(block) - _SERVICE
        if unknown:
            raise ConfigError(f"mxstate: unknown settings {sorted(unknown)} with `server`", ("mxstate",))
        server = block.get("server")
        if not isinstance(server, str) or not (server.startswith("unix:") or server.startswith("tcp:")):
            raise ConfigError(
                "mxstate: `server` must be `unix:PATH` or `tcp:HOST:PORT`, the address `mxstate serve` listens on",
                ("mxstate", "server"),
            )
        self.server = server
        secret_file = block.get("secret_file")
        if secret_file is not None and (not isinstance(secret_file, str) or not secret_file):
            raise ConfigError("mxstate: `secret_file` must be a path", ("mxstate", "secret_file"))
        self.secret_file = secret_file
        self.connections = _positive_int(block, "connections", 4)
        timeout = block.get("timeout_s", 60.0)
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError("mxstate: `timeout_s` must be a positive number", ("mxstate", "timeout_s"))
        self.timeout_s = float(timeout)
        self.cache_mb = _positive_int(block, "cache_mb", 256)

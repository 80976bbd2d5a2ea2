"""Puts every Synapse homeserver of a test run on mxstate.

On PYTHONPATH with `MXSTATE_SYNAPSE_TEST_DIR` set (trial's `-j` workers
inherit both), this installs mxstate_synapse as soon as
`synapse.storage.databases` is imported, and records each homeserver's
stores in `MXSTATE_SYNAPSE_TEST_LOG`: `open` per mxstate database, `stock`
if a homeserver was built with Synapse's own state stores.
"""

import importlib.abc
import importlib.machinery
import os
import sys

_TARGET = "synapse.storage.databases"


def _record(line: str) -> None:
    log = os.environ.get("MXSTATE_SYNAPSE_TEST_LOG")
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")


def _after_import(module: object) -> None:
    import mxstate_synapse
    from mxstate_synapse.state_store import MxStateGroupDataStore

    mxstate_synapse.install()
    databases_cls = module.Databases  # type: ignore[attr-defined]
    original_init = databases_cls.__init__

    def checked_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        if not isinstance(self.state, MxStateGroupDataStore):
            _record(f"stock {os.getpid()} {type(self.state).__module__}.{type(self.state).__name__}")

    databases_cls.__init__ = checked_init


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec):  # type: ignore[no-untyped-def]
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:  # type: ignore[no-untyped-def]
        self._inner.exec_module(module)
        _after_import(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


if os.environ.get("MXSTATE_SYNAPSE_TEST_DIR"):
    sys.meta_path.insert(0, _Finder())

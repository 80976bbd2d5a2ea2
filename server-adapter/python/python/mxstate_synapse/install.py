"""Installing mxstate into Synapse: the replacement store classes, the
`mxstate:` config section and the purge controller's SQL paths."""

import logging

import synapse

logger = logging.getLogger(__name__)

#: Synapse releases this integration was tested with (major.minor).
TESTED_SYNAPSE = ("1.163",)

_installed = False


class UnsupportedSynapse(RuntimeError):
    """The running Synapse is not a release this integration was tested with."""


def check_synapse_version(version: str = synapse.__version__) -> None:
    """Refuses a Synapse outside the tested releases."""
    major_minor = ".".join(version.split(".")[:2])
    if major_minor not in TESTED_SYNAPSE:
        raise UnsupportedSynapse(
            f"mxstate_synapse supports Synapse {', '.join(v + '.x' for v in TESTED_SYNAPSE)}; "
            f"this is Synapse {version}. Its state-store internals may differ: refusing to start."
        )


def install() -> None:
    """Makes Synapse build its state stores on mxstate. Call it before the
    homeserver builds its data stores (the launcher does). Idempotent."""
    global _installed
    if _installed:
        return
    check_synapse_version()

    import synapse.storage.databases as databases
    from synapse.config.homeserver import HomeServerConfig

    from .auth_chains import after_databases, patch_auth_chains
    from .config import MxStateConfig
    from .deletion_store import MxStateDeletionDataStore
    from .purge import patch_purge_controller
    from .state_store import MxStateGroupDataStore

    if MxStateConfig not in HomeServerConfig.config_classes:
        HomeServerConfig.config_classes.append(MxStateConfig)
    # `Databases.__init__` looks these names up in its own module when it runs.
    databases.StateDeletionDataStore = MxStateDeletionDataStore  # type: ignore[misc]
    databases.StateGroupDataStore = MxStateGroupDataStore  # type: ignore[misc]
    patch_purge_controller()
    patch_auth_chains()
    original_init = databases.Databases.__init__

    def init_then_catch_up(self, main_store_class, hs):  # type: ignore[no-untyped-def]
        original_init(self, main_store_class, hs)
        after_databases(self, hs)

    databases.Databases.__init__ = init_then_catch_up  # type: ignore[method-assign]
    _installed = True
    logger.info("mxstate_synapse installed: Synapse's state groups are stored in mxstate")

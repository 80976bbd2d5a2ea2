"""`python -m mxstate_synapse -c homeserver.yaml [synapse options]`: starts
Synapse's main process with its state database on mxstate."""

import sys
from typing import Callable


def launch(synapse_main: Callable[[], None]) -> None:
    """Installs the integration (refusing an untested Synapse), then runs
    one of Synapse's entry points with this process's arguments."""
    from .install import UnsupportedSynapse, install

    try:
        install()
    except UnsupportedSynapse as e:
        sys.exit(f"mxstate_synapse: {e}")
    synapse_main()


def main() -> None:
    from synapse.app.homeserver import main as synapse_main

    launch(synapse_main)


if __name__ == "__main__":
    main()

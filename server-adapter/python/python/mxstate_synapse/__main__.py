"""`python -m mxstate_synapse -c homeserver.yaml [synapse options]`: starts
Synapse's main process with its state database on mxstate."""

import sys


def main() -> None:
    from .install import UnsupportedSynapse, install

    try:
        install()
    except UnsupportedSynapse as e:
        sys.exit(f"mxstate_synapse: {e}")
    from synapse.app.homeserver import main as synapse_main

    synapse_main()


if __name__ == "__main__":
    main()

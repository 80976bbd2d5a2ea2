"""`python -m mxstate_synapse.worker -c homeserver.yaml -c worker.yaml`:
starts a Synapse worker (`synapse.app.generic_worker`) with its state
database on mxstate. Every process of a worker deployment names the same
`mxstate serve` in its `mxstate: server:` setting."""

from .__main__ import launch


def main() -> None:
    from synapse.app.generic_worker import main as worker_main

    launch(worker_main)


if __name__ == "__main__":
    main()

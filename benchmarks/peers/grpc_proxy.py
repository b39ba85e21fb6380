"""Optuna's gRPC storage proxy over SQLite or a journal file, for ``GrpcStorageProxy`` clients.

    python -m benchmarks.peers.grpc_proxy --storage sqlite:///PATH.db
    python -m benchmarks.peers.grpc_proxy --journal PATH.log

``optuna.storages.run_grpc_proxy_server`` takes a port and cannot report the one the OS picked
for port 0, so this builds the same server the same way (``make_server``, which it calls: the
default thread pool of 10) and adds a loopback listener whose port it learns. SQLite is opened
with ``get_storage``, which adds Optuna's cache, as the proxy's documentation asks.
"""

from __future__ import annotations

import argparse

from optuna.storages import BaseStorage, JournalStorage, get_storage
from optuna.storages._grpc.server import make_server
from optuna.storages.journal import JournalFileBackend


def main() -> None:
    """Open the storage, listen on 127.0.0.1 (port 0), announce the URL, serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--storage", help="an RDB storage URL")
    which.add_argument("--journal", help="a JournalFileBackend file")
    args = parser.parse_args()
    storage: BaseStorage
    if args.storage:
        storage, detail = get_storage(args.storage), args.storage
    else:
        storage, detail = (
            JournalStorage(JournalFileBackend(args.journal)),
            f"journal {args.journal}",
        )
    # make_server binds the port it is given; port 0 there is a listener nobody learns of.
    server = make_server(storage, "127.0.0.1", 0)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"grpc-proxy serving on grpc://127.0.0.1:{port} ({detail})", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()

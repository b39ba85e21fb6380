"""The ``optunapi`` command: ``serve`` runs the server; the other commands talk to one."""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import sys
from collections.abc import Sequence

from optunapi import __version__
from optunapi.errors import OptunapiError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except OptunapiError as exc:
        print(f"optunapi: {exc.detail}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optunapi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"optunapi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--config-dir", help="where {study}.yaml space files live (./config)")
    serve.add_argument("--storage", help="storage URL (sqlite:///optunapi.db)")
    serve.add_argument("--host", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on, 0 for any free one (8000)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (info)")
    serve.set_defaults(run=_serve)

    server_url = os.environ.get("OPTUNAPI_SERVER", "http://127.0.0.1:8000")
    for name, help_text, run in (
        ("studies", "list the studies on a server", _studies),
        ("best", "print the best trial(s) of a study", _best),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--server", default=server_url, help=f"server URL ({server_url})")
        if name == "best":
            sub.add_argument("study")
        sub.set_defaults(run=run)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from optunapi.server import Settings, create_app

    flags = {
        "config_dir": args.config_dir,
        "storage": args.storage,
        "host": args.host,
        "port": args.port,
    }
    settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    # Bind first, so that --port 0 can say which port it got before serving.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        print(f"optunapi: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(
        f"optunapi {__version__} serving on http://{shown}:{port} "
        f"(storage {settings.storage}, config {settings.config_dir})",
        flush=True,
    )
    # Only the line above goes to stdout, so a parent may read it and leave the pipe alone;
    # uvicorn's logs, its access log included, go to stderr.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(create_app(settings), log_level=args.log_level, log_config=log_config)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _studies(args: argparse.Namespace) -> int:
    from optunapi.client import Client

    with Client(args.server) as client:
        for study in client.studies():
            counts = ", ".join(f"{k} {v}" for k, v in study.counts.model_dump().items() if v)
            print(f"{study.name}\t{'/'.join(study.directions)}\t{counts or 'no trials'}")
    return 0


def _best(args: argparse.Namespace) -> int:
    from optunapi.client import Client

    with Client(args.server) as client:
        best = [t.model_dump(mode="json") for t in client.best(args.study)]
    print(json.dumps(best, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``optunapi`` command: ``serve`` runs the server; the other commands talk to one."""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import socket
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

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
    except BrokenPipeError:  # `optunapi export s | head`
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optunapi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"optunapi {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--config-dir", help="where {study}.yaml space files live (./config)")
    serve.add_argument("--storage", help="storage URL (sqlite:///optunapi.db)")
    serve.add_argument("--host", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on, 0 for any free one (8000)")
    serve.add_argument("--ssl-certfile", help="serve HTTPS with this certificate (PEM)")
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (PEM)")
    serve.add_argument("--tokens-file", help="bearer tokens, one per line; requests need one")
    serve.add_argument("--log-level", default="info", help="uvicorn log level (info)")
    serve.set_defaults(run=_serve)

    server_url = os.environ.get("OPTUNAPI_SERVER", "http://127.0.0.1:8000")
    server_help = f"server URL ({server_url}; default from OPTUNAPI_SERVER)"
    worker = commands.add_parser(
        "worker",
        help="run a program once per trial",
        description="Run COMMAND once per trial of a study; see docs/worker.md.",
    )
    worker.add_argument("--study", required=True, help="the study's name")
    worker.add_argument("--server", default=server_url, help=server_help)
    worker.add_argument(
        "--n-trials", type=int, help="stop after this many trials (default: run on)"
    )
    worker.add_argument("--worker-id", help="this worker's name (default: host-pid)")
    worker.add_argument("--args", action="store_true", help="also pass params as --name value")
    worker.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    worker.set_defaults(run=_worker)

    for name, help_text, run in (
        ("studies", "list the studies on a server", _studies),
        ("best", "print the best trial(s) of a study", _best),
        ("export", "write a study's trials as CSV or JSON", _export),
    ):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--server", default=server_url, help=server_help)
        if name != "studies":
            sub.add_argument("study")
        if name == "export":
            sub.add_argument("--format", choices=("csv", "json"), default="csv")
            sub.add_argument("--output", "-o", help="file to write (default: standard output)")
        sub.set_defaults(run=run)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from optunapi.server import Settings, create_app
    from optunapi.server.storage import open_storage

    flags = {
        "config_dir": args.config_dir,
        "storage": args.storage,
        "host": args.host,
        "port": args.port,
        "ssl_certfile": args.ssl_certfile,
        "ssl_keyfile": args.ssl_keyfile,
        "tokens_file": args.tokens_file,
    }
    try:
        settings = Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:  # a flag or an OPTUNAPI_* variable out of range
        shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"optunapi: bad setting: {shown}", file=sys.stderr)
        return 1
    problem = _tls_problem(settings.ssl_certfile, settings.ssl_keyfile)
    if problem:  # checked here, before the "serving on" line, as uvicorn would fail after it
        print(f"optunapi: {problem}", file=sys.stderr)
        return 1
    try:  # a bad storage URL fails here, before the "serving on" line
        storage = open_storage(settings.storage, settings.busy_timeout)
    except Exception as exc:
        print(f"optunapi: cannot open the storage {settings.storage}: {exc}", file=sys.stderr)
        return 1
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
    scheme = "https" if settings.ssl_certfile else "http"
    print(
        f"optunapi {__version__} serving on {scheme}://{shown}:{port} "
        f"(storage {settings.storage}, config {settings.config_dir})",
        flush=True,
    )
    # Only the line above goes to stdout, so a parent may read it and leave the pipe alone;
    # uvicorn's logs, its access log included, go to stderr.
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config = uvicorn.Config(
        create_app(settings, storage),
        log_level=args.log_level,
        log_config=log_config,
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
    )
    # What is alive now (the modules, the studies just loaded) lives as long as the server:
    # kept out of the collector's full passes, which otherwise take about 100 ms here, during
    # which no request is answered.
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _tls_problem(certfile: Path | None, keyfile: Path | None) -> str | None:
    """Why the TLS files cannot be used, or None (also when there are none)."""
    if keyfile is not None and certfile is None:
        return "--ssl-keyfile needs --ssl-certfile (the certificate it belongs to)."
    if certfile is None:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        key = keyfile or "in the same file"
        return f"cannot use the TLS certificate {certfile} (key {key}): {exc}"
    return None


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


def _export(args: argparse.Namespace) -> int:
    from optunapi.client import Client

    with Client(args.server) as client:
        text = client.export(args.study, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from optunapi import worker

    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        print("optunapi worker: give the program to run after --", file=sys.stderr)
        return 2
    if args.n_trials is not None and args.n_trials < 1:
        print("optunapi worker: --n-trials must be at least 1", file=sys.stderr)
        return 2
    return worker.main(args)


if __name__ == "__main__":
    raise SystemExit(main())

"""Serve an ASGI app the way ``optunapi serve`` does: bind port 0 first, print the URL, serve.

Binding before serving lets a parent read the port from stdout instead of guessing a free one;
the same uvicorn settings (one process, uvloop and httptools when installed) keep the HTTP peers
comparable with optunapi, so that differences come from what the apps do per request.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn


def bind_loopback() -> tuple[socket.socket, str]:
    """Bind a listening TCP socket on 127.0.0.1 with a port the OS picks.

    Returns:
        The socket and its ``http://127.0.0.1:PORT`` URL.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    return sock, f"http://{host}:{port}"


def serve(app: Any, name: str, detail: str) -> None:
    """Announce ``{name} serving on URL ({detail})`` on stdout, then serve ``app`` until killed.

    Args:
        app: The ASGI application.
        name: What to call the server in its announcement.
        detail: What the parenthesis of the announcement says (its storage, say).
    """
    sock, url = bind_loopback()
    print(f"{name} serving on {url} ({detail})", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])

"""``uvicorn_config``: the uvicorn settings ``sertk serve`` runs the app with (and the tests do).

Beyond uvicorn's defaults: the h11 protocol with a header timeout
(:func:`~sertk.server.limits.header_timeout_protocol`), a short keep-alive, and no
``Server:`` header.
"""

from __future__ import annotations

import socket
from typing import Any


def uvicorn_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    header_timeout: float = 10.0,
    keep_alive: int = 5,
    log_level: str = "info",
) -> Any:
    """A ``uvicorn.Config`` for ``app``; run it with ``uvicorn.Server(config).run()``."""
    import uvicorn

    from sertk.server.limits import header_timeout_protocol

    return uvicorn.Config(
        app, host=host, port=port, http=header_timeout_protocol(header_timeout),
        timeout_keep_alive=keep_alive, log_level=log_level, server_header=False,
    )  # fmt: skip


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (0: a free port), for ``Server.run(sockets=)``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock

"""How SealFlow's small HTTP programs run: until SIGTERM or Ctrl-C, then close the socket.

The time-stamp authority (``python -m stamping.tsa.server``), the identity simulator
(``python -m stamping.registry.identity_simulator``) and the national-platform simulator
(``python -m filing.simulator``) are started and stopped by the embedded stack
(``sealflow stack up/down``: SIGTERM) and by people (Ctrl-C); each must finish the request in hand and
exit 0 either way. It lives in the foundation because ``filing`` may not import ``stamping``.
``shutdown`` must not run on the thread that serves (it waits for the loop to end),
so the signal handler hands it to a thread of its own. The "listening on" line is printed once the
socket is bound, flushed, so whoever started the program can see the port it got. Every answer goes
out whole through :func:`send_body`, with its length.
"""

from __future__ import annotations

import signal
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


def serve_until_stopped(server: HTTPServer, what: str, host: str) -> None:
    """Serve ``server`` until SIGTERM or Ctrl-C, announcing ``what`` listens on ``host`` and its port."""
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"{what} listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def send_body(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
    """Answer the request in hand with ``body`` whole: status, Content-Type, Content-Length (the programs
    speak HTTP/1.1 keep-alive, so the length tells the client where the answer ends)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)

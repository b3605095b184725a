"""A local simulator of the data-sharing platform's identity registers (身份核验模拟器), over real HTTP.

Run: ``python -m stamping.registry.identity_simulator --port 0 --data registers.json`` — prints
``identity simulator listening on http://HOST:PORT``. ``registers.json`` holds
``{"persons": [{"name", "id_number"}], "units": [{"name", "credit_code"}]}``; the simulator answers
:mod:`stamping.registry.identity_source`'s two checks from it: an unknown number, or a name that
differs from the registered one, is no match with the reason. It keeps nothing else and never logs
the numbers it is asked about.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 4096


def load_registers(path: Path) -> dict[str, dict[str, str]]:
    """``{"persons": {id_number: name}, "units": {credit_code: name}}`` from the data file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"persons": {p["id_number"].upper(): p["name"] for p in data.get("persons", [])},
            "units": {u["credit_code"].upper(): u["name"] for u in data.get("units", [])}}


def verdict(registers: dict[str, dict[str, str]], kind: str, name: str, number: str) -> dict[str, Any]:
    known = registers[kind].get(number.strip().upper())
    what = "person (公民身份号码)" if kind == "persons" else "unit (统一社会信用代码)"
    if known is None:
        return {"match": False, "reason": f"no {what} with that number in the register"}
    if known != name.strip():
        return {"match": False, "reason": f"the registered name of that {what.split(' ')[0]} differs"}
    return {"match": True, "reason": ""}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # never log the numbers asked about
        return

    def _reply(self, status: int, obj: Any) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/health":
            return self._reply(200, {"status": "ok"})
        return self._reply(404, {"error": "not_found"})

    def do_POST(self) -> None:
        routes = {"/v1/persons:check": ("persons", "id_number"), "/v1/units:check": ("units", "credit_code")}
        if self.path not in routes:
            return self._reply(404, {"error": "not_found"})
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._reply(413 if length else 400, {"error": "bad_body"})
        try:
            body = json.loads(self.rfile.read(length))
            kind, field = routes[self.path]
            return self._reply(200, verdict(self.server.registers, kind, str(body["name"]), str(body[field])))
        except (ValueError, KeyError, TypeError):
            return self._reply(400, {"error": "bad_request", "reason": "expected a JSON object with name and number"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stamping.registry.identity_simulator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18700)
    parser.add_argument("--data", type=Path, required=True, help="JSON file of the registers")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.registers = load_registers(args.data)  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"identity simulator listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

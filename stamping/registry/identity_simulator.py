"""A local simulator of the data-sharing platform's identity registers (身份核验模拟器), over real HTTP.

Run: ``python -m stamping.registry.identity_simulator --port 0 --data registers.json`` — prints
``identity simulator listening on http://HOST:PORT``; with ``--add-person NAME=ID`` /
``--add-unit NAME=CODE`` it registers them in the file instead (compose: ``docker compose run --rm
identity --data … --add-unit …``). ``registers.json`` holds
``{"persons": [{"name", "id_number"}], "units": [{"name", "credit_code"}]}``; the simulator answers
:mod:`stamping.registry.identity_source`'s two checks from it: an unknown number, or a name that
differs from the registered one, is no match with the reason. It keeps nothing else and never logs
the numbers it is asked about.

The embedded stack runs it as its ``identity`` component on ``<state>/identity/registers.json``;
``stamping.registry.identity_register.register`` adds people and units to that file (the demo
registers its own, a test registers a mismatch) and the running simulator re-reads the file when
it changes — no restart, no admin endpoint that anyone on the network could use to register
themselves. A missing file is an empty register (everything is refused), never an error that stops
the simulator.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kernel.serving import send_body, serve_until_stopped
from stamping.registry.identity_register import load_registers, register

MAX_BODY = 4096


class Registers:
    """The register file as the simulator sees it: read again whenever the file changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._data: dict[str, dict[str, str]] = {"persons": {}, "units": {}}
        self._lock = threading.Lock()

    def current(self) -> dict[str, dict[str, str]]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        with self._lock:
            if stamp != self._seen:
                self._data, self._seen = load_registers(self.path), stamp
            return self._data


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
        send_body(self, status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

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
            name, number = str(body["name"]), str(body[field])
        except (ValueError, KeyError, TypeError):
            return self._reply(400, {"error": "bad_request", "reason": "expected a JSON object with name and number"})
        try:
            registers = self.server.registers.current()  # type: ignore[attr-defined]
        except (OSError, ValueError, KeyError, TypeError):
            return self._reply(503, {"error": "register_unreadable"})
        return self._reply(200, verdict(registers, kind, name, number))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stamping.registry.identity_simulator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18700)
    parser.add_argument("--data", type=Path, required=True, help="JSON file of the registers")
    parser.add_argument("--add-person", action="append", default=[], metavar="NAME=ID_NUMBER",
                        help="register a person (公民身份号码) in --data and exit, instead of serving")
    parser.add_argument("--add-unit", action="append", default=[], metavar="NAME=CREDIT_CODE",
                        help="register a unit (统一社会信用代码) in --data and exit, instead of serving")
    args = parser.parse_args(argv)
    if args.add_person or args.add_unit:
        pairs = [[tuple(v.rsplit("=", 1)) for v in values] for values in (args.add_person, args.add_unit)]
        if any(len(pair) != 2 or not all(x.strip() for x in pair) for pair in pairs[0] + pairs[1]):
            parser.error("--add-person/--add-unit take NAME=NUMBER")
        register(args.data, persons=pairs[0], units=pairs[1])
        print(f"registered {len(pairs[0])} person(s) and {len(pairs[1])} unit(s) in {args.data}")
        return 0
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.registers = Registers(args.data)  # type: ignore[attr-defined]
    server.registers.current()  # an unreadable file stops the start, with its error
    serve_until_stopped(server, "identity simulator", args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Identities checked against their source (身份核验): the data-sharing platform's person and unit
registers, through one small interface.

On applying for a seal and on using one, the registry asks whether a person's ID-card name and
公民身份号码, and a unit's legal name and 统一社会信用代码, match the authoritative registers. The
interface is :class:`IdentitySource`; :class:`HttpIdentitySource` speaks SealFlow's own JSON shape
(the real platform's interface is not public; a province's adapter replaces this class):

* ``POST /v1/persons:check`` ``{"name", "id_number"}`` → ``{"match": bool, "reason": str}``
* ``POST /v1/units:check`` ``{"name", "credit_code"}`` → ``{"match": bool, "reason": str}``

A local simulator (:mod:`stamping.registry.identity_simulator`) answers it over real HTTP for the
demo and the tests. Decisions: a register that cannot be reached refuses the step (it is a check,
not a hint), with a reason saying so; the verdict's reason comes from the register and is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True)
class IdentityVerdict:
    """The register's answer: whether the pair matches, and why not."""

    match: bool
    reason: str = ""


class IdentityUnavailable(RuntimeError):
    """The register could not be asked (down, timeout, unreadable answer)."""


class IdentitySource(Protocol):
    def check_person(self, name: str, id_number: str) -> IdentityVerdict: ...

    def check_unit(self, name: str, credit_code: str) -> IdentityVerdict: ...


class HttpIdentitySource:
    """:class:`IdentitySource` over HTTP (``base_url`` of the register, e.g. the simulator's)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpIdentitySource({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def _ask(self, path: str, body: dict[str, str]) -> IdentityVerdict:
        try:
            response = self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"identity register {self.base_url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise IdentityUnavailable(f"identity register {self.base_url}{path}: HTTP {response.status_code}")
        try:
            data = response.json()
            return IdentityVerdict(bool(data["match"]), str(data.get("reason", "")))
        except (ValueError, KeyError, TypeError):
            raise IdentityUnavailable(f"identity register {self.base_url}{path}: unreadable answer") from None

    def check_person(self, name: str, id_number: str) -> IdentityVerdict:
        return self._ask("/v1/persons:check", {"name": name, "id_number": id_number})

    def check_unit(self, name: str, credit_code: str) -> IdentityVerdict:
        return self._ask("/v1/units:check", {"name": name, "credit_code": credit_code})

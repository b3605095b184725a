"""Refuse to deploy with placeholder or weak secrets (``python -m sealflow.deploy_check``).

docker-compose runs this as the ``secrets-check`` service, and every other service waits for it to
complete successfully: a stack started from an unedited ``.env.example`` (``change-me-…``, an empty
Fernet key) or without a key-encryption key stops here with the name of each bad variable and how
to make a good one. Values are never printed.

It also refuses a deployment without an identity register (``SEALFLOW_IDENTITY_URL``): outside the
embedded stack nothing else could check the people and units who apply for and use seals, and
SealFlow refuses those steps rather than skip the check.

Decisions: the rules are few and strict (not empty, no placeholder words, at least 16 characters,
the Fernet key a real one, the KEK 32+ hex digits and not one repeated digit), because a secret that
passes a lax rule is not safer; the KEK is read from the compose secret file, never from the
environment or the data volume.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

# Every secret compose passes, with the command that makes a good one.
SECRETS: dict[str, str] = {
    "AIRFLOW_JWT_SECRET": 'python -c "import secrets; print(secrets.token_urlsafe(32))"',
    "AIRFLOW_API_SECRET_KEY": 'python -c "import secrets; print(secrets.token_urlsafe(32))"',
    "AIRFLOW_FERNET_KEY": 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
    "POSTGRES_PASSWORD": 'python -c "import secrets; print(secrets.token_urlsafe(24))"',
    "SEALFLOW_DB_PASSWORD": 'python -c "import secrets; print(secrets.token_urlsafe(24))"',
    "S3_SECRET_KEY": 'python -c "import secrets; print(secrets.token_urlsafe(32))"',
    "SEALFLOW_FILING_KEY_PIN": 'python -c "import secrets; print(secrets.token_urlsafe(18))"',
}
# Settings a deployment cannot run without (not secrets: they are named in the message), with what to set.
REQUIRED_SETTINGS: dict[str, str] = {
    "SEALFLOW_IDENTITY_URL": "the data-sharing platform's identity register (身份核验) service, or compose's "
                             "identity simulator http://identity:18620; without it every seal application and use "
                             "is refused",
}
KEK_MAKE = "install -m 600 /dev/null secrets/kek.hex && python -c \"import secrets; print(secrets.token_hex(32))\" " \
           "> secrets/kek.hex"
PLACEHOLDER = re.compile(r"change[-_ ]?me|changeit|placeholder|example|secret$|^password$|^admin$|^sealflow$",
                         re.IGNORECASE)
MIN_LENGTH = 16


def _fernet_ok(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def check_value(name: str, value: str) -> str | None:
    """Why ``value`` is not acceptable for ``name`` (None when it is). Never quotes the value."""
    if not value.strip():
        return "is empty"
    if PLACEHOLDER.search(value):
        return "is still a placeholder from .env.example"
    if name == "AIRFLOW_FERNET_KEY":
        return None if _fernet_ok(value) else "is not a Fernet key (32 bytes, URL-safe base64)"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


def check_kek_file(path: Path) -> str | None:
    """Why the key-encryption key file is not acceptable (None when it is)."""
    try:
        raw = path.read_text().strip()
    except OSError as exc:
        return f"cannot be read ({exc.strerror}); make it with `{KEK_MAKE}` and set SEALFLOW_KEK_SECRET_FILE"
    if PLACEHOLDER.search(raw):
        return "is still a placeholder"
    if not re.fullmatch(r"[0-9a-fA-F]{32,}", raw) or len(set(raw.lower())) < 4:
        return f"must hold at least 32 random hex digits (`{KEK_MAKE}`)"
    return None


def problems(environ: Mapping[str, str], kek_file: Path | None) -> list[str]:
    """Every bad secret and missing required setting, one sentence each."""
    found = []
    for name, make in SECRETS.items():
        why = check_value(name, environ.get(name, ""))
        if why:
            found.append(f"{name} {why}; make one with `{make}`")
    for name, what in REQUIRED_SETTINGS.items():
        if not environ.get(name, "").strip():
            found.append(f"{name} is not set; set it to {what}")
    if kek_file is not None:
        why = check_kek_file(kek_file)
        if why:
            found.append(f"the key-encryption key {kek_file} {why}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    kek = Path(args[0]) if args else Path(os.environ.get("SEALFLOW_KEK_FILE", "/run/secrets/sealflow_kek"))
    found = problems(os.environ, kek)
    for line in found:
        print(f"secrets-check: {line}", file=sys.stderr)
    if found:
        print(f"secrets-check: refusing to start: {len(found)} secret(s) or setting(s) to fix in .env (see above)",
              file=sys.stderr)
        return 1
    print("secrets-check: every secret is set and none is a placeholder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``sealflow ca init|issue|show|verify|unlock-key`` — the local demo CA (never a production CA)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asn1crypto import pem

from kernel.settings import get_settings
from sealflow.exits import CheckFailed, UsageError


def _ca_dir() -> Path:
    return get_settings().state_dir / "ca"


def _admin_pin(var: str) -> str:
    import os

    pin = os.environ.get(var, "")
    if not pin:
        raise UsageError(f"set the CA administrator's credential in the environment variable {var} (never on the "
                         "command line)")
    return pin


def _init(args: argparse.Namespace) -> int:
    import os

    from gmpki.keys.store import ADMIN_CREDENTIAL_FILE, KeyStoreError, set_admin_credential
    from gmpki.pki.ca import DemoCA

    ca = DemoCA.create(_ca_dir(), args.name)
    if args.admin_pin_env:
        current = os.environ.get(args.current_admin_pin_env, "") if args.current_admin_pin_env else None
        try:
            set_admin_credential(ca.directory, _admin_pin(args.admin_pin_env), current)
        except KeyStoreError as exc:
            raise UsageError(str(exc)) from None
        print("CA administrator credential set")
    elif not (ca.directory / ADMIN_CREDENTIAL_FILE).exists():
        print("note: no CA administrator credential yet: `sealflow ca unlock-key` refuses until one is set "
              "(`sealflow ca init --admin-pin-env VAR`)")
    print(f"demo CA ready in {ca.directory}")
    print(f"trusted root: {ca.directory / 'ca-root.pem'}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    import os

    from gmpki.keys.store import KeyStoreError
    from gmpki.pki.ca import DemoCA
    from gmpki.pki.certs import Subject
    from kernel.keys import key_store

    settings = get_settings()
    pin = os.environ.get(args.pin_env, "")
    if not pin:
        raise UsageError(f"set the new key's PIN in the environment variable {args.pin_env}")
    if bool(args.credit_code) == bool(args.id_number):
        raise UsageError("give exactly one of --credit-code (a unit) or --id-number (a person)")
    ca = DemoCA.create(_ca_dir())
    try:
        store = key_store(settings)
        public = store.create(args.key_id, pin)
    except KeyStoreError as exc:  # key exists, weak PIN, bad id, loose KEK file: all the operator's to fix
        raise UsageError(str(exc)) from None
    subject = (Subject(args.name, organization=args.name, organization_identifier=args.credit_code)
               if args.credit_code else Subject(args.name, serial_number=args.id_number))
    cert = ca.issue(subject, public)
    store.set_certificate(args.key_id, cert)
    out = Path(args.out) if args.out else settings.state_dir / f"{args.key_id}.pem"
    out.write_bytes(pem.armor("CERTIFICATE", cert))
    print(f"key {args.key_id} created in the key store; certificate written to {out}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from gmpki.pki.certs import describe
    from gmpki.pki.trust import read_certificates

    paths = [Path(p) for p in args.certs] or [_ca_dir() / f"{n}.pem" for n in
                                             ("ca-root", "ca-intermediate", "seal-maker")]
    out = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path} does not exist (run `sealflow ca init` first?)")
        out += [{"file": str(path), **describe(der)} for der in read_certificates(path.read_bytes())]
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        for item in out:
            print(f"{item['file']}\n  subject  {item['subject']}\n  issuer   {item['issuer']}\n"
                  f"  valid    {item['not_before']} → {item['not_after']}\n  CA {item['ca']}  "
                  f"usage {', '.join(item['key_usage'])}\n  SM3 {item['sm3']}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from gmpki.pki.trust import TrustStore, read_certificates

    trust_paths = args.trust or [str(_ca_dir() / "ca-root.pem"), str(_ca_dir() / "ca-intermediate.pem")]
    trust = TrustStore.from_paths(trust_paths)
    failed = False
    for cert_path in args.certs:
        for der in read_certificates(Path(cert_path).read_bytes()):
            result = trust.validate(der)
            print(f"{cert_path}: {'OK' if result.ok else 'FAILED'} — {result.reason}")
            failed |= not result.ok
    if failed:
        raise CheckFailed("at least one certificate did not validate")
    return 0


def _unlock_key(args: argparse.Namespace) -> int:
    from gmpki.keys.store import AdminCredentialRefused, KeyNotFound
    from kernel.db import transaction
    from kernel.keys import key_store
    from sealflow.commands.seal import registry

    settings = get_settings()
    store = key_store(settings)
    try:
        store.admin_unlock(args.key_id, _ca_dir(), _admin_pin(args.admin_pin_env))
    except KeyNotFound as exc:
        raise UsageError(str(exc)) from None
    except AdminCredentialRefused as exc:
        raise CheckFailed(f"refused: {exc}") from None
    reg = registry(settings)
    with transaction(reg.sessions) as session:  # a custody event: audited like the seal's own events
        reg.audit.append(session, actor="ca-admin", action="key.unlock", reason="",
                         payload={"key_id": args.key_id})
    print(f"key {args.key_id} unlocked; its wrong-PIN counter is back to 0")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    ca = subparsers.add_parser("ca", help="the local demo CA")
    sub = ca.add_subparsers(dest="ca_command", required=True)
    p = sub.add_parser("init", help="create the demo CA (idempotent)")
    p.add_argument("--name", default="SealFlow Demo")
    p.add_argument("--admin-pin-env", help="environment variable holding the CA administrator's credential to set")
    p.add_argument("--current-admin-pin-env", help="environment variable holding the current credential (to "
                                                   "replace one)")
    p.set_defaults(handler=_init)
    p = sub.add_parser("issue", help="create a key in the key store and a signer certificate for it")
    p.add_argument("key_id")
    p.add_argument("--name", required=True, help="unit legal name or person's ID-card name")
    p.add_argument("--credit-code", help="统一社会信用代码 of a unit")
    p.add_argument("--id-number", help="公民身份号码 of a person")
    p.add_argument("--pin-env", default="SEALFLOW_PIN", help="environment variable holding the new key's PIN")
    p.add_argument("--out", help="where to write the certificate PEM")
    p.set_defaults(handler=_issue)
    p = sub.add_parser("show", help="print certificates (default: the demo CA's)")
    p.add_argument("certs", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_show)
    p = sub.add_parser("verify", help="validate certificates against trusted roots")
    p.add_argument("certs", nargs="+")
    p.add_argument("--trust", action="append", help="trusted root/intermediate PEM (default: the demo CA)")
    p.set_defaults(handler=_verify)
    p = sub.add_parser("unlock-key", help="CA administrator: unlock a key locked after 5 wrong PINs")
    p.add_argument("key_id")
    p.add_argument("--admin-pin-env", default="SEALFLOW_CA_ADMIN_PIN",
                   help="environment variable holding the CA administrator's credential")
    p.set_defaults(handler=_unlock_key)

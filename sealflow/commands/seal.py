"""``sealflow seal …`` — electronic seals (电子印章): the registry and seal files.

Lifecycle: ``apply`` (申领) → ``review`` at each level (逐级审核) → ``make`` (制作) → use →
``change`` (变更, a new seal with a new esID) / ``renew`` (续期, 30 days before expiry) /
``report-lost`` (挂起) → ``resume`` / ``revoke`` (注销, final). ``list``, ``show``,
``export-esl`` read the registry; ``inspect FILE`` prints what a seal (.esl) or seal
signature (.dat) holds, without verifying (that is ``sealflow verify``). ``demo-setup`` makes a
demo unit, person, users and two seals. ``unit-add``, ``person-add``, ``user-add``,
``unit-rename`` administer units and their users; ``expire-due`` runs the daily expiry job once.

Who acts is authenticated, never declared: the OS user running the command, mapped to a SealFlow
user by an administrator (``user-add --os-login`` / ``user-enrol``), or SEALFLOW_USER with its
credential in SEALFLOW_USER_CREDENTIAL. ``--actor`` only states whom you expect to be and is
refused when it differs. ``bootstrap`` makes the very first administrator (the current OS user);
``whoami`` says who you are.

PINs are read from the environment variable named by ``--pin-env`` (default SEALFLOW_SEAL_PIN)
or asked for on the terminal; they are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernel.files import write_atomic
from kernel.settings import Settings, get_settings
from sealflow.exits import CheckFailed, UsageError

_PICTURE_SUFFIX = {"PNG": ".png", "JPG": ".jpg", "JPEG": ".jpg", "GIF": ".gif", "SVG": ".svg", "OFD": ".ofd"}
PIN_ENV = "SEALFLOW_SEAL_PIN"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("seal", help="electronic seals (电子印章)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="seal_command", metavar="SUBCOMMAND", required=True)

    def cmd(name: str, help_: str, handler, *, actor: bool = True, json_: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        if actor:
            c.add_argument("--actor", help="checked, not trusted: refused unless it is who you authenticate as")
        if json_:
            c.add_argument("--json", action="store_true", help="print JSON for scripts")
        c.set_defaults(handler=handler)
        return c

    c = cmd("apply", "apply for a new seal (申领)", run_apply)
    c.add_argument("--unit", required=True, metavar="CREDIT_CODE", help="the owning unit's 统一社会信用代码")
    c.add_argument("--kind", required=True, choices=("official", "position", "personal"))
    c.add_argument("--type", dest="official_type", choices=("legal_name", "internal_body", "branch", "business"),
                   help="official seals: sub-type (default legal_name 法定名称章)")
    c.add_argument("--name", required=True, help="the seal name (legal name / ID-card name rules apply)")
    c.add_argument("--holder", metavar="ID_NUMBER", help="personal and position seals: the holder's 公民身份号码")
    c.add_argument("--keeper", help="the keeper (保管人) user (default: the actor)")
    c.add_argument("--reason", default="")

    c = cmd("review", "approve or reject one level of an application (逐级审核)", run_review)
    c.add_argument("application", type=int, metavar="APPLICATION_ID")
    c.add_argument("--level", type=int, required=True)
    decision = c.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    c.add_argument("--comment", default="")

    c = cmd("make", "make the seal of an approved application (制作)", run_make)
    c.add_argument("application", type=int, metavar="APPLICATION_ID")
    c.add_argument("--pin-env", default=PIN_ENV, help="variable holding the keeper's new PIN")
    c.add_argument("--impression", type=Path, help="印模 picture (PNG/JPEG/SVG); default: a generated demo seal")
    c.add_argument("--width-mm", type=float, default=42.0)
    c.add_argument("--height-mm", type=float, default=42.0)
    c.add_argument("--days", type=int, help="validity in days (default: SEALFLOW_SEAL_VALIDITY_DAYS)")

    c = cmd("list", "list seals (or applications)", run_list, actor=False)
    c.add_argument("--unit", metavar="CREDIT_CODE")
    c.add_argument("--status", help="active, suspended, expired, retired, revoked (applications: submitted…)")
    c.add_argument("--applications", action="store_true", help="list applications instead of seals")

    c = cmd("show", "one seal: details, certificates, status history", run_show, actor=False)
    c.add_argument("es_id", metavar="ES_ID")

    c = cmd("change", "change a seal (变更): a new seal with a new esID, the old one retired", run_change)
    c.add_argument("es_id", metavar="ES_ID")
    c.add_argument("--name", help="the new name (after `sealflow seal unit-rename`)")
    c.add_argument("--unit", metavar="CREDIT_CODE", help="merger: the unit that takes the seal over")
    c.add_argument("--reason", default="")
    c.add_argument("--pin-env", default=PIN_ENV, help="variable holding the PIN of the new seal's key")

    c = cmd("renew", "renew a seal in the 30 days before it expires (续期)", run_renew)
    c.add_argument("es_id", metavar="ES_ID")
    c.add_argument("--pin-env", default=PIN_ENV, help="variable holding the PIN of the renewed seal's key")

    for name, help_, handler in (("revoke", "revoke a seal for good (注销)", run_revoke),
                                 ("report-lost", "report a seal lost or out of control: suspends it at once",
                                  run_report_lost),
                                 ("resume", "lift a suspension", run_resume)):
        c = cmd(name, help_, handler)
        c.add_argument("es_id", metavar="ES_ID")
        c.add_argument("--reason", required=True)

    c = cmd("export-esl", "write a seal's SESeal (DER) to a .esl file", run_export, actor=False, json_=False)
    c.add_argument("es_id", metavar="ES_ID")
    c.add_argument("out", type=Path, metavar="OUT")
    c.add_argument("--version", type=int, help="an earlier version (default: the current one)")

    ins = sub.add_parser("inspect", help="print what a seal (.esl) or seal signature (.dat) holds")
    ins.add_argument("file", metavar="FILE", help="a DER SESeal (.esl) or SES_Signature (.dat)")
    ins.add_argument("--json", action="store_true", help="print JSON instead of text")
    ins.add_argument("--picture", metavar="OUT", help="also write the seal picture to OUT")
    ins.set_defaults(handler=run_inspect)

    c = cmd("demo-setup", "create a demo unit, person, users, one official and one personal seal", run_demo_setup,
            actor=False)

    c = cmd("bootstrap", "make the first administrator: you (the OS user), for a unit", run_bootstrap, actor=False)
    c.add_argument("--user", required=True, help="your SealFlow user name")
    c.add_argument("--unit", required=True, metavar="CREDIT_CODE")
    c.add_argument("--unit-name", required=True, help="the unit's legal name")
    c.add_argument("--credential-env", help="also set a credential, read from this environment variable")
    c = cmd("whoami", "who you are authenticated as, and your roles", run_whoami, actor=False)

    c = cmd("expire-due", "expire every seal past its validity now (the daily job, once)", run_expire, actor=False)

    c = cmd("unit-add", "register a unit", run_unit_add)
    c.add_argument("--name", required=True, help="legal name")
    c.add_argument("--code", required=True, help="统一社会信用代码")
    c.add_argument("--parent", metavar="CREDIT_CODE")
    c = cmd("unit-rename", "record a unit's new legal name", run_unit_rename)
    c.add_argument("--code", required=True)
    c.add_argument("--name", required=True)
    c.add_argument("--reason", default="")
    c = cmd("person-add", "register a person (ID-card name and number)", run_person_add)
    c.add_argument("--name", required=True)
    c.add_argument("--id-number", required=True)
    c = cmd("user-add", "grant a user a role in a unit", run_user_add)
    c.add_argument("--unit", required=True, metavar="CREDIT_CODE")
    c.add_argument("--user", required=True)
    c.add_argument("--role", required=True, choices=("applicant", "reviewer", "keeper", "admin", "records_office",
                                                     "operator", "archivist", "auditor"))
    c.add_argument("--level", type=int, default=0, help="reviewers: the level they decide (1..n)")
    c.add_argument("--person", metavar="ID_NUMBER", help="the person behind the user (personal seals' keepers)")
    c.add_argument("--os-login", help="a new user: the OS login that proves them at the command line")
    c.add_argument("--credential-env", help="a new user: environment variable holding their credential")
    c = cmd("user-enrol", "give a user without proof an OS login or credential", run_user_enrol)
    c.add_argument("user")
    c.add_argument("--os-login")
    c.add_argument("--credential-env")


# --- helpers ------------------------------------------------------------------------------


def registry(settings: Settings):
    """The registry of ``settings``; on the embedded stack its identity checks go to the stack's
    simulator (`sealflow stack up` runs it), in production to SEALFLOW_IDENTITY_URL (or refuse)."""
    from sealflow import root

    return root.registry(settings)


USER_ENV, CREDENTIAL_ENV = "SEALFLOW_USER", "SEALFLOW_USER_CREDENTIAL"


def os_login() -> str:
    """The OS account running this process — from the kernel's user id, not from $USER/$LOGNAME,
    which anyone can set."""
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def authenticated_user(reg, claimed: str | None = None) -> str:
    """Who is at the keyboard: SEALFLOW_USER proven by SEALFLOW_USER_CREDENTIAL, else the mapped OS
    login. ``claimed`` (an ``--actor``) must match, or the command is refused."""
    username = os.environ.get(USER_ENV)
    if username:
        who = reg.authenticate(username=username, credential=os.environ.get(CREDENTIAL_ENV, ""))
    else:
        who = reg.authenticate(os_login=os_login())
    if claimed and claimed != who:
        raise UsageError(f"you are authenticated as {who!r}; --actor {claimed!r} is refused (act as another user "
                         f"with {USER_ENV} and {CREDENTIAL_ENV})")
    return who


def _actor(args: argparse.Namespace, reg) -> str:
    return authenticated_user(reg, getattr(args, "actor", None))


def _secret(var: str | None) -> str | None:
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"the environment variable {var} is empty: put the credential there (never on the command "
                         "line)")
    return value


def _pin(args: argparse.Namespace) -> str:
    pin = os.environ.get(args.pin_env)  # the CLI is the boundary that takes the PIN from its caller
    if pin:
        return pin
    if sys.stdin.isatty():
        return getpass.getpass("seal key PIN: ")
    raise UsageError(f"no PIN: set the environment variable {args.pin_env} (or run on a terminal to be asked)")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Columns aligned for people (CJK characters count double)."""
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    for line in [list(columns), *cells]:
        print("  ".join(v + " " * (w - _width(v)) for v, w in zip(line, widths, strict=True)).rstrip())


def _run(fn):
    """Registry refusals → exit codes: bad input / unknown things 2, refused steps 1."""
    def wrapper(args: argparse.Namespace, settings: Settings | None = None) -> int:
        from sealflow.stack import StackError
        from stamping.registry import InvalidInput, NotFound, RegistryError

        try:
            return fn(args, settings or get_settings())
        except (InvalidInput, NotFound) as exc:
            raise UsageError(str(exc)) from None
        except (RegistryError, StackError) as exc:
            raise CheckFailed(f"refused ({type(exc).__name__}): {exc}") from None
    wrapper.__name__ = fn.__name__
    return wrapper


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, ensure_ascii=False, indent=2) if getattr(args, "json", False) else text)
    return 0


# --- handlers -----------------------------------------------------------------------------


@_run
def run_apply(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    app = reg.apply(_actor(args, reg), args.unit, args.kind, args.name, official_type=args.official_type,
                                   holder_id_number=args.holder, keeper=args.keeper, reason=args.reason)
    return _emit(args, {"application": app}, f"application {app} submitted; next: review level 1 "
                                             f"(`sealflow seal review {app} --level 1 --approve`)")


@_run
def run_review(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    status = reg.review(_actor(args, reg), args.application, args.level, bool(args.approve), args.comment)
    hint = {"approved": f"every level approved; next: `sealflow seal make {args.application}` by the keeper",
            "submitted": f"level {args.level} approved; next: level {args.level + 1}",
            "rejected": "rejected; the applicant may apply again"}.get(status, "")
    return _emit(args, {"application": args.application, "status": status}, f"application {args.application}: "
                                                                              f"{status} — {hint}")


@_run
def run_make(args: argparse.Namespace, settings: Settings) -> int:
    picture = None
    if args.impression:
        from stamping.pictures import PictureError, import_impression

        if not args.impression.is_file():
            raise UsageError(f"{args.impression}: no such file")
        try:
            picture = import_impression(args.impression.read_bytes(), str(args.impression), args.width_mm,
                                        args.height_mm)
        except PictureError as exc:
            raise UsageError(str(exc)) from None
    reg = registry(settings)
    es_id = reg.make(_actor(args, reg), args.application, _pin(args), picture=picture,
                                    valid_days=args.days)
    return _emit(args, {"es_id": es_id}, f"seal {es_id} made, filed and audited")


_SEAL_COLUMNS = ("es_id", "version", "name", "kind", "status", "keeper", "valid_end", "unit")
_APP_COLUMNS = ("id", "kind", "name", "applicant", "keeper", "levels", "status", "es_id")


@_run
def run_list(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    if args.applications:
        rows = reg.list_applications(status=args.status)
        columns = _APP_COLUMNS
    else:
        rows = reg.list_seals(credit_code=args.unit, status=args.status)
        columns = _SEAL_COLUMNS
    if args.json:
        return _emit(args, rows, "")
    if not rows:
        print("no applications" if args.applications else "no seals (apply for one: `sealflow seal apply`)")
        return 0
    print_table([{**r, "valid_end": str(r.get("valid_end", ""))[:10]} for r in rows], columns)
    return 0


@_run
def run_show(args: argparse.Namespace, settings: Settings) -> int:
    info = registry(settings).show(args.es_id)
    if args.json:
        return _emit(args, info, "")
    for key in ("es_id", "version", "name", "kind", "official_type", "type_code", "unit", "credit_code", "keeper",
                "status", "valid_start", "valid_end", "seal_sm3", "supersedes", "superseded_by"):
        if info.get(key) is not None:
            print(f"{key:14} {info[key]}")
    print("\ncertificates:")
    print_table(info["certificates"], ("version", "serial", "not_before", "not_after", "subject"))
    print("\nstatus history:")
    print_table(info["history"], ("at", "from", "to", "actor", "reason"))
    return 0


@_run
def run_change(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    new = reg.change(_actor(args, reg), args.es_id, _pin(args), new_name=args.name,
                                    new_unit_code=args.unit, reason=args.reason)
    return _emit(args, {"old": args.es_id, "new": new}, f"seal {args.es_id} retired; new seal {new} made and filed")


@_run
def run_renew(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    version = reg.renew(_actor(args, reg), args.es_id, _pin(args))
    return _emit(args, {"es_id": args.es_id, "version": version}, f"seal {args.es_id} renewed (version {version})")


@_run
def run_revoke(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.revoke(_actor(args, reg), args.es_id, args.reason)
    return _emit(args, {"es_id": args.es_id, "status": "revoked"}, f"seal {args.es_id} revoked (final)")


@_run
def run_report_lost(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.report_lost(_actor(args, reg), args.es_id, args.reason)
    return _emit(args, {"es_id": args.es_id, "status": "suspended"},
                 f"seal {args.es_id} suspended; an administrator resumes it (`sealflow seal resume`) or revokes it")


@_run
def run_resume(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.resume(_actor(args, reg), args.es_id, args.reason)
    return _emit(args, {"es_id": args.es_id, "status": "active"}, f"seal {args.es_id} active again")


@_run
def run_export(args: argparse.Namespace, settings: Settings) -> int:
    der = registry(settings).seal_der(args.es_id, args.version)
    if not args.out.parent.is_dir():
        raise UsageError(f"{args.out.parent}: no such folder")
    write_atomic(args.out, der)
    print(f"{args.out}: SESeal of {args.es_id} ({len(der)} bytes)")
    return 0


@_run
def run_expire(args: argparse.Namespace, settings: Settings) -> int:
    expired = registry(settings).expire_due()
    return _emit(args, {"expired": expired}, f"expired {len(expired)} seal(s)" + "".join(f"\n  {e}" for e in expired))


@_run
def run_demo_setup(args: argparse.Namespace, settings: Settings) -> int:
    from sealflow.stack import ensure_identity
    from stamping.registry import RegistryError
    from stamping.registry.demo import bootstrap_demo, keep_credentials

    if settings.embedded:  # the demo's people are checked by the stack's identity simulator: start it if need be
        ensure_identity(settings, out=lambda msg: print(msg, file=sys.stderr))
    reg = registry(settings)
    actor = None
    with contextlib.suppress(RegistryError):  # before the first administrator, nobody is (the demo makes one)
        actor = authenticated_user(reg)
    out = bootstrap_demo(reg, official_pin=os.environ.get("SEALFLOW_DEMO_OFFICIAL_PIN"),
                         personal_pin=os.environ.get("SEALFLOW_DEMO_PERSONAL_PIN"), actor=actor, os_login=os_login())
    # the demo people's credentials: a 0600 file for the demo, never printed
    out["credential_file"] = str(keep_credentials(settings, out.pop("credentials")))
    pins = out.pop("pins")
    pin_file = settings.state_dir / "registry" / "demo-pins.json"
    if pins:  # the demo keeper's PINs: a 0600 file for the demo, never printed
        old = json.loads(pin_file.read_text()) if pin_file.exists() else {}
        old.update({out["es_ids"][label]: pin for label, pin in pins.items()})
        _write_private_json(pin_file, old)
    out["pin_file"] = str(pin_file)
    text = (f"demo unit {out['unit']} ({out['credit_code']}), keeper {out['users']['keeper']}\n"
            f"official seal {out['es_ids']['official']}\npersonal seal {out['es_ids']['personal']}\n"
            f"keeper PINs: {pin_file} (mode 600)")
    return _emit(args, out, text)


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(data).encode())


@_run
def run_bootstrap(args: argparse.Namespace, settings: Settings) -> int:
    login = os_login()
    registry(settings).bootstrap(args.user, args.unit_name, args.unit, os_login=login,
                                 credential=_secret(args.credential_env))
    return _emit(args, {"user": args.user, "os_login": login, "unit": args.unit},
                 f"{args.user} (OS user {login}) is the first administrator of {args.unit}")


@_run
def run_whoami(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    who = authenticated_user(reg)
    me = next((u for u in reg.users() if u["username"] == who), {"username": who, "roles": []})
    roles = ", ".join(f"{r['role']}{'/' + str(r['level']) if r['level'] else ''} of {r['unit']}" for r in me["roles"])
    return _emit(args, me, f"{who}: {roles or 'no roles'}")


@_run
def run_user_enrol(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.enrol(_actor(args, reg), args.user, os_login=args.os_login, credential=_secret(args.credential_env))
    return _emit(args, {"user": args.user}, f"{args.user} can now authenticate")


@_run
def run_unit_add(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.add_unit(args.name, args.code, parent_code=args.parent, actor=_actor(args, reg))
    return _emit(args, {"unit": args.code}, f"unit {args.name} ({args.code}) registered")


@_run
def run_unit_rename(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.rename_unit(args.code, args.name, actor=_actor(args, reg), reason=args.reason)
    return _emit(args, {"unit": args.code, "name": args.name},
                 f"unit {args.code} is now {args.name}; change its seals with `sealflow seal change`")


@_run
def run_person_add(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.add_person(args.name, args.id_number, actor=_actor(args, reg))
    return _emit(args, {"person": args.name}, f"person {args.name} registered")


@_run
def run_user_add(args: argparse.Namespace, settings: Settings) -> int:
    reg = registry(settings)
    reg.add_user(args.unit, args.user, args.role, level=args.level, person_id_number=args.person,
                 actor=_actor(args, reg), os_login=args.os_login, credential=_secret(args.credential_env))
    return _emit(args, {"user": args.user, "role": args.role}, f"{args.user} is {args.role} of {args.unit}")


def run_inspect(args: argparse.Namespace) -> int:
    from stamping.ses.codec import SesFormatError
    from stamping.ses.inspect import describe, format_text, picture_of, read_seal_file

    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        der = read_seal_file(path)
        desc = describe(der)
    except SesFormatError as exc:
        raise UsageError(f"{path}: not a seal or seal signature: {exc}") from None
    print(json.dumps(desc, ensure_ascii=False, indent=2) if args.json else format_text(desc))
    if args.picture:
        kind, data = picture_of(der)
        out = Path(args.picture)
        if not out.parent.is_dir():
            raise UsageError(f"{out.parent}: no such folder for the picture")
        write_atomic(out, data)
        if not args.json:
            print(f"picture ({kind}, {len(data)} bytes) written to {out}"
                  + ("" if out.suffix.lower() == _PICTURE_SUFFIX.get(kind.upper(), out.suffix.lower())
                     else f" (its type is {kind})"))
    return 0

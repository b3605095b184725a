"""Signatures.xml, the list of a document's signatures (签名列表, GB/T 33190 §18.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stamping.ofd import xmlns
from stamping.ofd.package import OfdError, OfdPackage, folder_of


@dataclass(frozen=True)
class SignatureEntry:
    id: str
    type: str  # "Seal" (default) or "Sign"
    member: str  # member name of its Signature.xml
    base_loc: str  # as written


@dataclass
class SignatureList:
    member: str
    max_sign_id: int
    entries: list[SignatureEntry] = field(default_factory=list)


def read_signatures(pkg: OfdPackage, member: str) -> SignatureList:
    root = pkg.xml_root(member, "Signatures")
    base = folder_of(member)
    entries = []
    for sig in xmlns.children(root, "Signature"):
        loc = sig.get("BaseLoc") or ""
        if not loc:
            raise OfdError(pkg.path, f"{member}: Signature without BaseLoc")
        kind = sig.get("Type") or "Seal"
        entries.append(SignatureEntry(sig.get("ID", ""), kind, pkg.resolve(loc, base), loc))
    try:
        max_id = int(xmlns.text(root, "MaxSignId") or 0)
    except ValueError:
        max_id = 0
    ids = [int(e.id) for e in entries if e.id.isdigit()]
    return SignatureList(member, max(max_id, *ids) if ids else max_id, entries)

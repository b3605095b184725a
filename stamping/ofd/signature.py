"""Signature.xml, one signature's description (签名描述, GB/T 33190 §18.2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from stamping.ofd import xmlns
from stamping.ofd.package import OfdError, OfdPackage, folder_of

SM3_OID = "1.2.156.10197.1.401"
SM3_NAMES = frozenset({SM3_OID, "SM3", "sm3"})


@dataclass(frozen=True)
class Reference:
    file_ref: str  # as written, e.g. "/Doc_0/Document.xml"
    member: str  # resolved member name
    check_value: str  # base64


@dataclass(frozen=True)
class StampAnnotInfo:
    id: str
    page_ref: str
    boundary: tuple[float, ...]
    clip: tuple[float, ...] | None


@dataclass
class SignatureInfo:
    member: str
    provider: dict[str, str]
    signature_method: str
    signature_datetime: str
    check_method: str
    references: list[Reference] = field(default_factory=list)
    stamp_annots: list[StampAnnotInfo] = field(default_factory=list)
    seal_member: str | None = None
    signed_value_member: str = ""


def read_signature(pkg: OfdPackage, member: str) -> SignatureInfo:
    root = pkg.xml_root(member, "Signature")
    base = folder_of(member)
    info = xmlns.child(root, "SignedInfo")
    if info is None:
        raise OfdError(pkg.path, f"{member}: no SignedInfo")
    provider = xmlns.child(info, "Provider")
    refs_el = xmlns.child(info, "References")
    sig = SignatureInfo(
        member=member,
        provider=dict(provider.attrib) if provider is not None else {},
        signature_method=xmlns.text(info, "SignatureMethod"),
        signature_datetime=xmlns.text(info, "SignatureDateTime"),
        check_method=(refs_el.get("CheckMethod") if refs_el is not None else None) or "",
    )
    if refs_el is not None:
        for ref in xmlns.children(refs_el, "Reference"):
            file_ref = ref.get("FileRef") or ""
            sig.references.append(Reference(file_ref, pkg.resolve(file_ref, base) if file_ref else "",
                                            xmlns.text(ref, "CheckValue")))
    for annot in xmlns.children(info, "StampAnnot"):
        clip = annot.get("Clip")
        sig.stamp_annots.append(StampAnnotInfo(
            annot.get("ID", ""), annot.get("PageRef", ""), tuple(xmlns.floats(annot.get("Boundary"))),
            tuple(xmlns.floats(clip)) if clip else None))
    seal_loc = xmlns.text(xmlns.child(info, "Seal"), "BaseLoc")
    if seal_loc:
        sig.seal_member = pkg.resolve(seal_loc, base)
    value_loc = xmlns.text(root, "SignedValue")
    if not value_loc:
        raise OfdError(pkg.path, f"{member}: no SignedValue")
    sig.signed_value_member = pkg.resolve(value_loc, base)
    return sig

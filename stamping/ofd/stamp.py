"""Put a seal on an OFD document (OFD 签章, GB/T 33190 §18, GB/T 38540 V4).

What is written, per seal-formats.md:
- ``Doc_N/Signs/Signatures.xml`` created (and declared in OFD.xml's DocBody) or updated
  (MaxSignId + one ``Signature`` entry);
- ``Doc_N/Signs/Sign_k/Seal.esl`` (the DER SESeal), ``Signature.xml`` and ``SignedValue.dat``
  (a V4 SES_Signature with dataHash = SM3(Signature.xml), propertyInfo = its absolute path).
References cover every member present at signing, the new Seal.esl included, except
Signatures.xml, so that further seals stay possible and keep this one valid.
A document whose existing signature protects a file this seal must change (Signatures.xml, or
OFD.xml when it must gain a Signatures entry) is refused: sealing it would break that signature.
Original members are copied as their stored compressed bytes: byte for byte, and fast.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from gmpki.gm.sm3 import sm3
from gmpki.keys.signer import Signer
from stamping.ofd import xmlns
from stamping.ofd.document import DocumentInfo, read_document
from stamping.ofd.ofd_xml import DocBody, read_doc_bodies
from stamping.ofd.package import OfdError, OfdPackage, folder_of
from stamping.ofd.page import PageContent, find_text, read_page
from stamping.ofd.signature import read_signature
from stamping.ofd.signatures import read_signatures
from stamping.ofd.xmlns import OFD_NS
from stamping.ofd.zipbuild import ZipBuilder
from stamping.placement import AnchorNotFound, Placement, PlacementError
from stamping.ses.codec import parse_seal
from stamping.ses.make import make_signature

if TYPE_CHECKING:
    from gmpki.pki.tsa_client import Timestamper

__all__ = ["AnchorNotFound", "stamp_ofd"]

SM3_OID = "1.2.156.10197.1.401"
SM2_SM3_OID = "1.2.156.10197.1.501"
PROVIDER = ("SealFlow", "0.1", "SealFlow")
_HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_DOCBODY_END = re.compile(rb"</(?:([A-Za-z_][\w.-]*):)?DocBody\s*>")


@dataclass(frozen=True)
class _Annot:
    page_id: str
    boundary: tuple[float, float, float, float]
    clip: tuple[float, float, float, float] | None = None


@lru_cache(maxsize=64)
def _seal_size(seal_der: bytes) -> tuple[float, float]:
    seal = parse_seal(seal_der)
    return float(seal.picture_width_mm), float(seal.picture_height_mm)


@lru_cache(maxsize=64)
def _seal_digest(seal_der: bytes) -> bytes:
    """The same seal is used for a whole batch: hash its ~20 KB once."""
    return sm3(seal_der)


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") or "0"


def _offset(placement: Placement) -> tuple[float, float]:
    off = getattr(placement, "offset_mm", None) or (0.0, 0.0)
    if isinstance(off, int | float):
        return float(off), 0.0
    return float(off[0]), float(off[1])


def _find_anchor(pkg: OfdPackage, doc: DocumentInfo, indexes: list[int], text: str) -> tuple[int, float, float]:
    """The page index and centre (mm from top-left) of the first occurrence of ``text``."""
    for i in indexes:
        item = find_text(pkg, doc.pages[i].member, text)
        if item is not None:
            return i, item.x_mm + item.width_mm / 2, item.y_mm + item.height_mm / 2
    raise AnchorNotFound(pkg.path, text)


def _page_box(pkg: OfdPackage, doc: DocumentInfo, i: int, cache: dict[int, PageContent]):
    page = cache.get(i) or read_page(pkg, doc.pages[i].id, doc.pages[i].member, doc.physical_box)
    cache[i] = page
    return page.box


def _annotations(pkg: OfdPackage, doc: DocumentInfo, placement: Placement, size: tuple[float, float],
                 cross_page: bool) -> list[_Annot]:
    w, h = size
    pages: dict[int, PageContent] = {}
    n = len(doc.pages)
    if cross_page:
        # 骑缝章: the seal cut into n vertical slices; page i shows slice i at its right edge.
        y = placement.y_mm if placement.y_mm is not None else None
        out = []
        for i in range(n):
            box = _page_box(pkg, doc, i, pages)
            cy = y if y is not None else box[3] / 2
            slice_w = w / n
            bx = box[2] - (i + 1) * slice_w
            out.append(_Annot(doc.pages[i].id, (bx, cy - h / 2, w, h), (i * slice_w, 0.0, slice_w, h)))
        return out
    try:
        page_index = placement.page_index(n)
    except PlacementError as exc:
        raise OfdError(pkg.path, str(exc)) from None
    dx, dy = _offset(placement)
    if placement.anchor_text:
        indexes = [page_index] if page_index is not None else list(range(n))
        page_index, cx, cy = _find_anchor(pkg, doc, indexes, placement.anchor_text)
    else:
        page_index = page_index or 0
        if placement.x_mm is None or placement.y_mm is None:
            raise OfdError(pkg.path, "placement needs x_mm and y_mm, or an anchor text")
        cx, cy = placement.x_mm, placement.y_mm
    cx, cy = cx + dx, cy + dy
    return [_Annot(doc.pages[page_index].id, (cx - w / 2, cy - h / 2, w, h))]


def _add_signatures_to_ofd_xml(pkg: OfdPackage, loc: str) -> bytes:
    """OFD.xml with ``<Signatures>`` appended to the first DocBody, other bytes untouched."""
    data = pkg.read("OFD.xml")
    m = _DOCBODY_END.search(data)
    if not m:
        raise OfdError(pkg.path, "OFD.xml: no </DocBody> to declare Signatures in")
    prefix = (m.group(1) + b":") if m.group(1) else b""
    tag = prefix + b"Signatures"
    element = b"<" + tag + b">" + escape(loc).encode() + b"</" + tag + b">"
    return data[: m.start()] + element + data[m.start():]


def _signatures_xml(pkg: OfdPackage, member: str | None, new_id: int, base_loc: str) -> bytes:
    if member is None or member not in pkg:
        return _HEADER + (
            f'<ofd:Signatures xmlns:ofd="{OFD_NS}"><ofd:MaxSignId>{new_id}</ofd:MaxSignId>'
            f'<ofd:Signature ID="{new_id}" Type="Seal" BaseLoc={quoteattr(base_loc)}/></ofd:Signatures>'
        ).encode()
    root = pkg.xml(member)
    ns = xmlns.namespace(root)
    q = (lambda n: f"{{{ns}}}{n}") if ns else (lambda n: n)
    max_el = xmlns.child(root, "MaxSignId")
    if max_el is None:
        max_el = etree.Element(q("MaxSignId"), nsmap=root.nsmap)
        root.insert(0, max_el)
    max_el.text = str(new_id)
    entry = etree.SubElement(root, q("Signature"))
    entry.set("ID", str(new_id))
    entry.set("Type", "Seal")
    entry.set("BaseLoc", base_loc)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _signature_xml(refs: list[tuple[str, bytes]], annots: list[_Annot], signed_at: datetime,
                   seal_loc: str | None, value_loc: str) -> bytes:
    name, version, company = PROVIDER
    parts = [
        f'<ofd:Signature xmlns:ofd="{OFD_NS}"><ofd:SignedInfo>'
        f'<ofd:Provider ProviderName="{name}" Version="{version}" Company="{company}"/>'
        f"<ofd:SignatureMethod>{SM2_SM3_OID}</ofd:SignatureMethod>"
        f"<ofd:SignatureDateTime>{signed_at:%Y%m%d%H%M%S}Z</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{SM3_OID}">'
    ]
    for loc, digest in refs:
        parts.append(f"<ofd:Reference FileRef={quoteattr(loc)}><ofd:CheckValue>"
                     f"{base64.b64encode(digest).decode()}</ofd:CheckValue></ofd:Reference>")
    parts.append("</ofd:References>")
    for k, a in enumerate(annots, 1):
        clip = f' Clip="{" ".join(_fmt(v) for v in a.clip)}"' if a.clip else ""
        parts.append(f'<ofd:StampAnnot ID="{k}" PageRef={quoteattr(a.page_id)} '
                     f'Boundary="{" ".join(_fmt(v) for v in a.boundary)}"{clip}/>')
    if seal_loc:
        parts.append(f"<ofd:Seal><ofd:BaseLoc>{escape(seal_loc)}</ofd:BaseLoc></ofd:Seal>")
    parts.append(f"</ofd:SignedInfo><ofd:SignedValue>{escape(value_loc)}</ofd:SignedValue></ofd:Signature>")
    return _HEADER + "".join(parts).encode()


def _free_sign_folder(pkg: OfdPackage, signs_dir: str) -> str:
    taken = {n.rstrip("/") for n in pkg.directories} | {folder_of(n) for n in pkg.names()}
    k = 0
    while f"{signs_dir}/Sign_{k}" in taken:
        k += 1
    return f"{signs_dir}/Sign_{k}"


def _refuse_breaking_earlier_seals(pkg: OfdPackage, bodies: list[DocBody], changed: set[str]) -> None:
    """Every existing signature must keep verifying: none may protect a file this seal writes."""
    for body in bodies:
        if not body.signatures or body.signatures not in pkg:
            continue
        for entry in read_signatures(pkg, body.signatures).entries:
            if entry.member not in pkg:
                continue
            protected = sorted({r.member for r in read_signature(pkg, entry.member).references} & changed)
            if protected:
                raise OfdError(pkg.path, f"the existing signature /{entry.member} protects "
                               + ", ".join("/" + m for m in protected)
                               + ", which a new seal must change; sealing would break that signature. "
                               "Seal the document before it is signed, or ask its signer to leave these files out")


def stamp_ofd(src: bytes, seal_der: bytes, signer: Signer, placement: Placement,
              signed_at: datetime | None = None, cross_page: bool = False, *, path: str = "<ofd>",
              timestamper: Timestamper | None = None, compact: bool = False) -> bytes:
    """Seal an OFD document; returns the new package. Raises OfdError / AnchorNotFound.
    ``timestamper``: the TSA whose token over the signature value goes in SES_Signature.timeStamp.

    ``compact=True`` (what the batch pipeline uses) leaves out the optional ``Seal.esl`` and
    deflates ``SignedValue.dat``: the SESeal, with its picture, is already inside SignedValue.dat's
    SES_Signature, so Seal.esl held the picture a second time — about half of a sealed one-page
    certificate (issue 11, item 9). ofdrw verifies and renders such files the same."""
    seal_file = not compact
    signed_at = (signed_at or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    pkg = OfdPackage(src, path)
    bodies = read_doc_bodies(pkg)  # OFD.xml parsed once, for the new seal and the earlier ones
    body = bodies[0]
    doc = read_document(pkg, body.doc_root)
    size = _seal_size(seal_der)
    annots = _annotations(pkg, doc, placement, size, cross_page or bool(getattr(placement, "cross_page", False)))

    replaced: dict[str, bytes] = {}
    sig_list_member = body.signatures if body.signatures else None
    if sig_list_member and sig_list_member in pkg:
        sig_list = read_signatures(pkg, sig_list_member)
        new_id = sig_list.max_sign_id + 1
    else:
        new_id = 1
        if sig_list_member is None:
            sig_list_member = f"{folder_of(body.doc_root)}/Signs/Signatures.xml".lstrip("/")
            replaced["OFD.xml"] = _add_signatures_to_ofd_xml(pkg, sig_list_member)
    sign_dir = _free_sign_folder(pkg, f"{folder_of(sig_list_member)}")
    sig_member, seal_member, value_member = (f"{sign_dir}/Signature.xml", f"{sign_dir}/Seal.esl",
                                             f"{sign_dir}/SignedValue.dat")
    _refuse_breaking_earlier_seals(pkg, bodies, {*replaced, sig_list_member, sig_member, seal_member, value_member})

    refs: list[tuple[str, bytes]] = []
    for name in pkg.names():
        if name == sig_list_member:
            continue
        refs.append(("/" + name, sm3(replaced.get(name) or pkg.read(name))))
    if seal_file:
        refs.append(("/" + seal_member, _seal_digest(seal_der)))
    signature_xml = _signature_xml(refs, annots, signed_at, "/" + seal_member if seal_file else None,
                                   "/" + value_member)
    signed_value = make_signature(seal_der, sm3(signature_xml), "/" + sig_member, signer, signed_at, timestamper)
    replaced[sig_list_member] = _signatures_xml(pkg, sig_list_member, new_id, "/" + sig_member)

    zb = ZipBuilder(signed_at.timetuple()[:6])
    for name in pkg.order:
        if name in replaced:
            zb.add(name, replaced.pop(name))
        elif name.endswith("/"):
            zb.add(name, b"", compress=False)
        else:
            info, raw = pkg.raw_entry(name)
            zb.add_raw(name, info, raw)
    for name, data in replaced.items():
        zb.add(name, data)
    zb.add(sig_member, signature_xml)
    if seal_file:
        zb.add(seal_member, seal_der, compress=False)
    zb.add(value_member, signed_value, compress=compact)
    return zb.finish()

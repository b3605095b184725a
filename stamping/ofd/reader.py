"""open_ofd: an OFD as pages and their text — our own "rendering" check, since PyMuPDF cannot read OFD."""

from __future__ import annotations

from dataclasses import dataclass, field

from stamping.ofd.document import DocumentInfo, read_document
from stamping.ofd.ofd_xml import DocBody, read_doc_bodies
from stamping.ofd.package import OfdError, OfdPackage
from stamping.ofd.page import PageContent, read_page
from stamping.ofd.signatures import SignatureList, read_signatures


@dataclass
class OfdDocument:
    package: OfdPackage
    body: DocBody
    document: DocumentInfo
    pages: list[PageContent] = field(default_factory=list)
    signatures: SignatureList | None = None

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.pages)


def open_ofd(data: bytes, path: str = "<ofd>", *, read_pages: bool = True) -> OfdDocument:
    """Open an OFD package safely and list its (first document's) pages with their text.

    Raises :class:`OfdError` for anything unreadable: a missing page part is an error, so a
    successful open means every page's content could be parsed (the usability check).
    """
    pkg = OfdPackage(data, path)
    body = read_doc_bodies(pkg)[0]
    doc = read_document(pkg, body.doc_root)
    result = OfdDocument(pkg, body, doc)
    if read_pages:
        for ref in doc.pages:
            if ref.member not in pkg:
                raise OfdError(path, f"missing part {ref.member} (page {ref.id})")
            result.pages.append(read_page(pkg, ref.id, ref.member, doc.physical_box))
    if body.signatures and body.signatures in pkg:
        result.signatures = read_signatures(pkg, body.signatures)
    return result

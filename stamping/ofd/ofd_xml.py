"""OFD.xml, the package entry (文件包入口, GB/T 33190 §7.4)."""

from __future__ import annotations

from dataclasses import dataclass

from stamping.ofd import xmlns
from stamping.ofd.package import OfdError, OfdPackage


@dataclass(frozen=True)
class DocBody:
    doc_root: str  # member name of Document.xml
    signatures: str | None  # member name of Signatures.xml, when declared


def read_doc_bodies(pkg: OfdPackage) -> list[DocBody]:
    root = pkg.xml_root("OFD.xml", "OFD")
    bodies = []
    for body in xmlns.children(root, "DocBody"):
        doc_root = xmlns.text(body, "DocRoot")
        if not doc_root:
            raise OfdError(pkg.path, "OFD.xml: DocBody without DocRoot")
        sigs = xmlns.text(body, "Signatures")
        bodies.append(DocBody(pkg.resolve(doc_root), pkg.resolve(sigs) if sigs else None))
    if not bodies:
        raise OfdError(pkg.path, "OFD.xml has no DocBody")
    for body in bodies:
        if body.doc_root not in pkg:
            raise OfdError(pkg.path, f"missing part {body.doc_root} (DocRoot)")
    return bodies

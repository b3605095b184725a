"""What an OFD reader displays (显示内容), to judge a signature's coverage (签名覆盖范围) against it.

A signature covers the files named in its References, chosen by the signer's software. What matters
is what a reader shows: the document named by the FIRST DocBody of ``OFD.xml`` (readers open that
one), its ``Document.xml``, every page's content and everything the pages draw.

Two tiers, as issue 12 decides:
- ``essential``: ``OFD.xml``, the displayed ``Document.xml`` and every page's ``Content.xml``. One of
  them not covered → the signature does not seal what is shown (``not_valid``): with ``OFD.xml`` free,
  an unsigned DocBody can be put first; with a page free, its text can be swapped.
- ``drawn``: templates, resource files and the images, fonts and colour profiles they name,
  annotations, attachments. Not covered → ``valid_with_warnings`` naming them.

The drawn walk parses pages and resource files, so it runs only when some member is not covered at
all (never for SealFlow's own seals, which cover every member present at signing): a part that is
not in the package cannot be uncovered.
"""

from __future__ import annotations

from dataclasses import dataclass

from stamping.ofd import xmlns
from stamping.ofd.document import DocumentInfo
from stamping.ofd.package import OfdError, OfdPackage, folder_of


@dataclass(frozen=True)
class Displayed:
    """The displayed document: its essential members, and (lazily) what its pages draw."""

    doc: DocumentInfo

    @property
    def essential(self) -> list[str]:
        return ["OFD.xml", self.doc.member, *(p.member for p in self.doc.pages)]

    def drawn(self, pkg: OfdPackage) -> dict[str, str]:
        """member → what draws it (``template``, ``resource``, ``image/font``, ``annotation``, ...)."""
        return _DrawnWalk(pkg).run(self.doc)


class _DrawnWalk:
    def __init__(self, pkg: OfdPackage) -> None:
        self.pkg = pkg
        self.found: dict[str, str] = {}

    def _add(self, loc: str | None, base: str, what: str) -> str | None:
        if not loc:
            return None
        try:
            member = self.pkg.resolve(loc, base)
        except OfdError:
            return None  # a location that escapes the package draws nothing
        if member in self.pkg and member not in self.found:
            self.found[member] = what
            return member
        return None

    def _xml(self, member: str):
        try:
            return self.pkg.xml(member)
        except OfdError:
            return None  # unreadable parts are reported by whoever must read them

    def run(self, doc: DocumentInfo) -> dict[str, str]:
        base = folder_of(doc.member)
        root = self._xml(doc.member)
        if root is None:
            return self.found
        common = xmlns.child(root, "CommonData")
        res_files = []
        if common is not None:
            for name in ("PublicRes", "DocumentRes"):
                res_files += [self._add(xmlns.text(el), base, "resource") for el in xmlns.children(common, name)]
            for tpl in xmlns.children(common, "TemplatePage"):
                self._page(self._add(tpl.get("BaseLoc"), base, "template"), res_files)
        for page in doc.pages:
            self._page(page.member, res_files)
        for res in res_files:
            self._resource(res)
        annots = self._add(xmlns.text(root, "Annotations"), base, "annotation")
        if annots and (index := self._xml(annots)) is not None:
            for el in xmlns.descendants(index, "FileLoc"):
                self._add(xmlns.text(el), folder_of(annots), "annotation")
        attachments = self._add(xmlns.text(root, "Attachments"), base, "attachment")
        if attachments and (index := self._xml(attachments)) is not None:
            for el in xmlns.descendants(index, "FileLoc"):
                self._add(xmlns.text(el), folder_of(attachments), "attachment")
        return self.found

    def _page(self, member: str | None, res_files: list[str | None]) -> None:
        """A page or template: its own resource files (PageRes) are drawn too."""
        if not member or (root := self._xml(member)) is None:
            return
        for el in xmlns.children(root, "PageRes"):
            res_files.append(self._add(xmlns.text(el), folder_of(member), "resource"))

    def _resource(self, member: str | None) -> None:
        """Images, fonts and colour profiles a resource file names, relative to its BaseLoc."""
        if not member or (root := self._xml(member)) is None:
            return
        base = folder_of(member)
        if loc := (root.get("BaseLoc") or "").strip():
            try:
                base = self.pkg.resolve(loc, base)
            except OfdError:
                return
        for name, what in (("MediaFile", "image"), ("FontFile", "font")):
            for el in xmlns.descendants(root, name):
                self._add(xmlns.text(el), base, what)
        for el in xmlns.descendants(root, "ColorSpace"):
            self._add(el.get("Profile"), base, "colour profile")

"""Reading an EEP (:func:`read_eep`), streaming: the file is fed in chunks to an lxml parser with a
*target* (SAX-like events, no tree) that decodes Base64 to disk as it arrives, so large documents
need neither memory nor lxml's ``huge_tree``; and :func:`validate_eep` against an XSD.

Decisions:

* **Nothing is resolved or fetched**: DOCTYPE and ENTITY declarations are refused, entities are not
  resolved, no network.
* **The signatures are checked over the raw bytes** of the signed spans, captured as the file
  streams past (:class:`_SignedSpan`), as the 签名规则 in the file states.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from archive.eep.format import LOCKED_END, LOCKED_START, SIGNED_END, SIGNED_START, SM2_WITH_SM3, EepError
from archive.package import safe_relpath

MAX_EEP_BYTES = 1024 * 1024 * 1024


@dataclass
class EepDocument:
    name: str
    declared_size: int
    size: int = 0
    sm3: str = ""


@dataclass
class EepContent:
    fields: dict[str, str] = field(default_factory=dict)  # first value of each simple element
    documents: list[EepDocument] = field(default_factory=list)
    signature: bytes = b""
    lock_signature: bytes = b""
    certificate: bytes = b""
    algorithm: str = ""
    signed_bytes_sm3: str = ""
    signature_ok: bool | None = None


class _Target:
    """lxml parser target: collects simple fields, streams 编码数据 Base64 to files."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        self.content = EepContent()
        self.stack: list[str] = []
        self.text: list[str] = []
        self.doc_name = ""
        self.doc_size = 0
        self.sink = None
        self.hash = None
        self.pending = ""
        self.written = 0

    @staticmethod
    def _local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    def start(self, tag, attrib) -> None:
        name = self._local(tag)
        self.stack.append(name)
        self.text = []
        if name == "编码数据":
            self.hash = hashlib.new("sm3")
            self.pending = ""
            self.written = 0
            if self.out_dir is not None:
                target = self.out_dir / safe_relpath(self.doc_name, "EEP")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.sink = target.open("wb")

    def data(self, text: str) -> None:
        if self.stack and self.stack[-1] == "编码数据":
            self._decode(self.pending + "".join(text.split()))
        else:
            self.text.append(text)

    def _decode(self, b64: str, final: bool = False) -> None:
        usable = len(b64) if final else len(b64) - len(b64) % 4
        self.pending = b64[usable:]
        if not usable:
            return
        try:
            chunk = base64.b64decode(b64[:usable], validate=True)
        except binascii.Error as exc:
            raise EepError(self.doc_name, f"bad Base64 in 编码数据: {exc}") from exc
        assert self.hash is not None
        self.hash.update(chunk)
        self.written += len(chunk)
        if self.sink is not None:
            self.sink.write(chunk)

    def end(self, tag) -> None:
        name = self._local(tag)
        value = "".join(self.text).strip()
        if name == "编码数据":
            if self.pending:
                self._decode(self.pending, final=True)
            if self.sink is not None:
                self.sink.close()
                self.sink = None
            assert self.hash is not None
            self.content.documents.append(EepDocument(self.doc_name, self.doc_size, self.written,
                                                      self.hash.hexdigest()))
        elif name == "计算机文件名":
            self.doc_name = value
        elif name == "计算机文件大小":
            self.doc_size = int(value) if value.isdigit() else -1
        elif name == "签名结果" and "电子签名" in self.stack:
            self.content.signature = base64.b64decode(value)
        elif name == "签名结果" and "锁定签名" in self.stack:
            self.content.lock_signature = base64.b64decode(value)
        elif name == "证书" and "电子签名" in self.stack and not self.content.certificate:
            self.content.certificate = base64.b64decode(value)
        elif name == "签名算法标识" and "电子签名" in self.stack:
            self.content.algorithm = value
        elif value and name not in self.content.fields:
            self.content.fields[name] = value
        self.stack.pop()
        self.text = []

    def close(self) -> EepContent:
        return self.content


class _SignedSpan:
    """Captures the raw bytes of the 被签名对象 element while the file streams past."""

    def __init__(self, start: bytes = SIGNED_START, end: bytes = SIGNED_END) -> None:
        self.start_marker, self.end_marker = start, end
        self.state = "before"  # before → inside → after
        self.tail = b""
        self.bytes = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self.state == "after":
            return
        data = self.tail + chunk
        if self.state == "before":
            i = data.find(self.start_marker)
            if i < 0:
                self.tail = data[-len(self.start_marker):]
                return
            self.state, data = "inside", data[i:]
            self.tail = b""
        # inside: keep everything, then look for the end marker in the kept bytes' tail
        start = max(0, len(self.bytes) - len(self.end_marker))
        self.bytes += data
        j = self.bytes.find(self.end_marker, start)
        if j >= 0:
            del self.bytes[j + len(self.end_marker):]
            self.state = "after"


def read_eep(path: Path, out_dir: Path | None = None, *, chunk_size: int = 256 * 1024) -> EepContent:
    """Read an EEP streaming; decode its documents into ``out_dir`` (if given) and check the signature.

    ``signature_ok`` is None when the signature could not be checked (no SM2 support or certificate).
    """
    if path.stat().st_size > MAX_EEP_BYTES:
        raise EepError(str(path), "EEP too large")
    target = _Target(out_dir)
    parser = etree.XMLParser(target=target, resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False)
    span = _SignedSpan()
    locked = _SignedSpan(LOCKED_START, LOCKED_END)
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(chunk_size):
                if b"<!DOCTYPE" in chunk or b"<!ENTITY" in chunk:
                    raise EepError(str(path), "DOCTYPE/ENTITY declarations are refused")
                span.feed(chunk)
                locked.feed(chunk)
                parser.feed(chunk)
        content = parser.close()
    except etree.XMLSyntaxError as exc:
        raise EepError(str(path), f"not well-formed XML: {exc}") from exc
    finally:
        if target.sink is not None:
            target.sink.close()
    signed = bytes(span.bytes) if span.state == "after" else b""
    content.signed_bytes_sm3 = hashlib.new("sm3", signed).hexdigest() if signed else ""
    if signed and content.signature and content.certificate and content.algorithm == SM2_WITH_SM3:
        from gmpki.gm.sm2 import SM2PublicKey

        try:
            key = SM2PublicKey.from_certificate(content.certificate)
            content.signature_ok = key.verify(content.signature, signed)
            if content.lock_signature:
                lock_ok = locked.state == "after" and key.verify(content.lock_signature, bytes(locked.bytes))
                content.signature_ok = content.signature_ok and lock_ok
        except Exception:
            content.signature_ok = False
    return content


def validate_eep(path: Path, xsd: Path) -> list[str]:
    """Errors of ``path`` against an XSD (an in-memory check, for tests and small files)."""
    schema = etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(resolve_entities=False, no_network=True)))
    doc = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]

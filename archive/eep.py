"""DA/T 48-2009 EEP (基于XML的电子文件封装包) export and import, both streaming.

Writing uses lxml ``etree.xmlfile``: files are Base64-encoded chunk by chunk, never held whole in
memory. Reading feeds the file in chunks to an lxml parser with a *target* (SAX-like events, no
tree), decoding Base64 to disk as it arrives — so large documents need neither memory nor lxml's
``huge_tree``. Entities are not resolved and nothing is fetched from the network.

Signature (电子签名): SM2-with-SM3 (签名算法标识 ``1.2.156.10197.1.501``) by the archiving unit over
the exact bytes of the ``被签名对象`` element as written in the file, from ``<被签名对象`` through
``</被签名对象>`` (stated in 签名规则). A reader recomputes it from the raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from archive.package import MANIFEST_NAME, PackageError, safe_relpath

NS = "http://www.saac.gov.cn/standards/ERM/encapsulation"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
FORMAT_DESCRIPTION = "本EEP根据中华人民共和国档案行业标准DA/T 48-2009《基于XML的电子文件封装规范》生成"
SIGN_RULE = ("SM2-with-SM3 (GB/T 35276, default user id) over the exact UTF-8 bytes of the 被签名对象 element "
             "as written in this file, from '<被签名对象' through '</被签名对象>'")
LOCK_RULE = ("SM2-with-SM3 over the exact UTF-8 bytes of the 电子签名 element it names, from '<电子签名' "
             "through '</电子签名>'")
ENCODING_DESCRIPTION = (
    "本封装包中“编码数据”元素存储的是计算机文件二进制流的Base64编码，"
    "有关Base64编码规则参见IETF RFC 2045多用途邮件扩展（MIME）第一部分：互联网信息体格式。"
    "当提取和显现封装在编码数据元素中的计算机文件时，应对Base64编码进行反编码，"
    "并依据封装包中“反编码关键字”元素中记录的值还原计算机文件的扩展名"
)
CHUNK = 3 * 64 * 1024  # a multiple of 3: Base64 of each chunk concatenates cleanly
SIGNED_START = "<被签名对象".encode()
SIGNED_END = "</被签名对象>".encode()
LOCKED_START = "<电子签名>".encode()
LOCKED_END = "</电子签名>".encode()
MAX_EEP_BYTES = 1024 * 1024 * 1024


class EepError(PackageError):
    """An EEP that cannot be written or read."""


class _HashingFile:
    """A write-only file that SM3-hashes what passes while ``hashing`` is on."""

    def __init__(self, fh) -> None:
        self.fh = fh
        self.hashing = False
        self.signed = bytearray()

    def write(self, data: bytes) -> int:
        if self.hashing:
            self.signed += data  # the signer signs these bytes (SM3 inside SM2 signing)
        return self.fh.write(data)


def _text(xf, tag: str, value: object) -> None:
    with xf.element(tag):
        xf.write(str(value))


def _b64_chunks(path: Path) -> Iterator[str]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield base64.b64encode(chunk).decode("ascii")


def write_eep(folder: Path, out: Path, signer, *, unit_name: str = "") -> Path:
    """Write the EEP of a package folder (as ``sealflow archive get`` writes it) to ``out``.

    Every file of the package becomes a 文档 (the sealed certificate is the 主文档); metadata
    fill the 文件实体. The file appears whole or not at all.
    """
    meta = json.loads((folder / "metadata.json").read_bytes())
    lic = meta.get("licence", {})
    code = str(meta["archival_code"])
    prefix, _, item = code.rpartition("-")
    fonds_cat, _, rest = prefix.partition("·")
    fonds, _, category = fonds_cat.partition("-")
    year = rest.split("-", 1)[0]
    files = sorted(f["name"] for f in meta.get("files", []))
    files += [n for n in ("metadata.json", "checks.json", MANIFEST_NAME) if (folder / n).is_file()]
    main = next((n for n in files if n.startswith("content/")), None)
    if main is None:
        raise EepError(str(folder), "package has no content file")
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    unit = unit_name or str(meta.get("licence", {}).get("issuer_name", ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            hf = _HashingFile(raw)
            with etree.xmlfile(hf, encoding="utf-8") as xf:
                xf.write_declaration()
                with xf.element("电子文件封装包", nsmap={None: NS}):
                    _text(xf, "封装包格式描述", FORMAT_DESCRIPTION)
                    _text(xf, "版本", "2009")
                    xf.flush()
                    hf.hashing = True
                    with xf.element("被签名对象", {"eep版本": "2009"}):
                        _text(xf, "封装包类型", "原始型")
                        _text(xf, "封装包类型描述", "本封装包包含电子文件数据及其元数据，原始封装，未经修改")
                        _text(xf, "封装包创建时间", now)
                        _text(xf, "封装包创建单位", unit or "SealFlow")
                        with xf.element("封装内容"):
                            _file_entity(xf, folder, meta, lic, files, main, fonds, category, year, item, unit)
                            _business(xf, meta, lic)
                            _agents(xf, lic, unit)
                    xf.flush()
                    hf.hashing = False
                    signature = signer.sign(bytes(hf.signed))
                    with xf.element("电子签名块"):
                        xf.flush()
                        hf.signed, hf.hashing = bytearray(), True
                        with xf.element("电子签名"):
                            _signature_body(xf, "签名标识符", "sig1", now, signature, signer, unit)
                        xf.flush()
                        hf.hashing = False
                    # 锁定签名: a second signature over the 电子签名 element's bytes, locking it.
                    lock = signer.sign(bytes(hf.signed))
                    with xf.element("锁定签名"):
                        _signature_body(xf, "被锁定签名标识符", "sig1", now, lock, signer, unit)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def _signature_body(xf, id_tag: str, id_value: str, now: str, signature: bytes, signer, unit: str) -> None:
    _text(xf, id_tag, id_value)
    _text(xf, "签名规则", SIGN_RULE if id_tag == "签名标识符" else LOCK_RULE)
    _text(xf, "签名时间", now)
    _text(xf, "签名人", _subject(signer.certificate) or unit or "SealFlow")
    _text(xf, "签名结果", base64.b64encode(signature).decode())
    with xf.element("证书块"):
        _text(xf, "证书", base64.b64encode(signer.certificate).decode())
    _text(xf, "签名算法标识", SM2_WITH_SM3)


def _file_entity(xf, folder: Path, meta: dict, lic: dict, files: list[str], main: str, fonds: str, category: str,
                 year: str, item: str, unit: str) -> None:
    with xf.element("文件实体块"), xf.element("文件实体"):
        _text(xf, "聚合层次", "文件")
        with xf.element("来源"):
            _text(xf, "全宗名称", fonds)
            _text(xf, "立档单位名称", unit or "SealFlow")
        _text(xf, "电子文件号", lic.get("licence_id", meta["archival_code"]))
        with xf.element("档号"):
            _text(xf, "全宗号", fonds)
            _text(xf, "年度", year)
            _text(xf, "保管期限", meta.get("retention_name", meta.get("retention", "")))
            _text(xf, "类别号", category)
            _text(xf, "室编件号", int(item))
        with xf.element("内容描述"):
            _text(xf, "题名", f"{lic.get('licence_type', '电子证照')}（{lic.get('holder_name', '')}）")
            _text(xf, "文件编号", lic.get("licence_number", ""))
            _text(xf, "责任者", lic.get("issuer_name", unit))
            _text(xf, "日期", lic.get("issue_date", ""))
            _text(xf, "密级", "公开")
        with xf.element("形式特征"):
            _text(xf, "文件组合类型", "单件")
            _text(xf, "语种", "汉语")
        with xf.element("存储位置"):
            _text(xf, "当前位置", f"packages/{meta['archival_code'].replace('·', '-')}.tar")
            _text(xf, "脱机载体编号", "无")
        with xf.element("权限管理"):
            _text(xf, "控制标识", "开放")
        _text(xf, "信息系统描述", "SealFlow 电子印章批量处理系统")
        with xf.element("文件数据"):
            for n, name in enumerate([main, *[f for f in files if f != main]], 1):
                safe_relpath(name, str(folder))
                path = folder / name
                with xf.element("文档"):
                    _text(xf, "文档标识符", f"doc{n}")
                    _text(xf, "文档序号", n)
                    _text(xf, "文档主从声明", "主文档" if name == main else "附属文档")
                    _text(xf, "题名", name)
                    with xf.element("文档数据", {"文档数据ID": f"data{n}"}), xf.element("编码", {"编码ID": f"enc{n}"}):
                        with xf.element("电子属性"):
                            _text(xf, "格式信息", name.rsplit(".", 1)[-1].upper())
                            _text(xf, "计算机文件名", name)
                            _text(xf, "计算机文件大小", path.stat().st_size)
                            _text(xf, "文档创建程序", "SealFlow")
                        _text(xf, "编码描述", ENCODING_DESCRIPTION)
                        _text(xf, "反编码关键字", name.rsplit(".", 1)[-1])
                        with xf.element("编码数据", {"编码数据ID": f"bin{n}", "引用编码数据ID": f"doc{n}"}):
                            for piece in _b64_chunks(path):
                                xf.write(piece)


def _business(xf, meta: dict, lic: dict) -> None:
    with xf.element("业务实体块"), xf.element("业务实体"):
        _text(xf, "业务标识符", f"archive-{meta['archival_code']}")
        _text(xf, "机构人员标识符", lic.get("issuer_code", "") or "unit")
        _text(xf, "文件标识符", lic.get("licence_id", meta["archival_code"]))
        _text(xf, "业务状态", "历史行为")
        _text(xf, "业务行为", "归档")
        _text(xf, "行为时间", meta.get("archived_at", ""))
        _text(xf, "行为依据", "GB/T 42727-2023")


def _agents(xf, lic: dict, unit: str) -> None:
    with xf.element("机构人员实体块"), xf.element("机构人员实体"):
        _text(xf, "机构人员标识符", lic.get("issuer_code", "") or "unit")
        _text(xf, "机构人员类型", "单位")
        _text(xf, "机构人员名称", lic.get("issuer_name", "") or unit or "SealFlow")
        if lic.get("issuer_code"):
            _text(xf, "组织机构代码", lic["issuer_code"])


def _subject(cert_der: bytes) -> str:
    try:
        from asn1crypto import x509

        return x509.Certificate.load(cert_der).subject.human_friendly
    except Exception:
        return ""


# -- reading ------------------------------------------------------------------------------------
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

"""Writing an EEP (:func:`write_eep`) from a package folder, streaming: lxml ``etree.xmlfile``
Base64-encodes each file chunk by chunk, never held whole in memory.

Decisions:

* **The bytes signed are the bytes written**: a :class:`_HashingFile` between lxml and the file
  keeps the 被签名对象 element's bytes (then the 电子签名 element's, for the 锁定签名) as they pass.
* **The file appears whole or not at all** (written to a temporary file, then renamed).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import x509
from lxml import etree

from archive.eep.format import LOCK_RULE, NS, SIGN_RULE, SM2_WITH_SM3, EepError
from archive.package import MANIFEST_NAME, safe_relpath

FORMAT_DESCRIPTION = "本EEP根据中华人民共和国档案行业标准DA/T 48-2009《基于XML的电子文件封装规范》生成"
ENCODING_DESCRIPTION = (
    "本封装包中“编码数据”元素存储的是计算机文件二进制流的Base64编码，"
    "有关Base64编码规则参见IETF RFC 2045多用途邮件扩展（MIME）第一部分：互联网信息体格式。"
    "当提取和显现封装在编码数据元素中的计算机文件时，应对Base64编码进行反编码，"
    "并依据封装包中“反编码关键字”元素中记录的值还原计算机文件的扩展名"
)
CHUNK = 3 * 64 * 1024  # a multiple of 3: Base64 of each chunk concatenates cleanly


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
        return x509.Certificate.load(cert_der).subject.human_friendly
    except Exception:
        return ""

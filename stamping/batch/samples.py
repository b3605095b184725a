"""Generated batches of sample certificates (电子证照) for the demo, the tests and the benchmarks.

Several licence types, PDF and OFD, valid identifiers — and, on request, a few deliberately bad
rows (a wrong check character, a missing file, a file that is not what the manifest says, a
duplicate 证照编号) so every quarantine path is exercised.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from stamping.identifiers import make_credit_code, make_id_number, make_licence_id

ISSUER_NAME = "示范市市场监督管理局"
ISSUER_CODE = make_credit_code("11330100MB1234567")


@dataclass(frozen=True)
class LicenceType:
    name: str
    code: str  # 21 characters: the defining body's credit code + a 3-digit number
    matter: str
    retention: str
    holder_is_person: bool = False


LICENCE_TYPES = (
    LicenceType("营业执照", make_credit_code("11100000000013338") + "001", "企业设立登记", "永久"),
    LicenceType("食品经营许可证", make_credit_code("11100000000013338") + "002", "食品经营许可", "30年"),
    LicenceType("道路运输经营许可证", make_credit_code("11100000000013338") + "003", "道路运输经营许可", "10年"),
    LicenceType("执业药师注册证", make_credit_code("11100000000013338") + "004", "执业药师注册", "30年", True),
)
MANIFEST_FIELDS = (
    "file", "format", "licence_id", "licence_number", "licence_type", "holder_name", "holder_code",
    "issuer_name", "issuer_code", "issue_date", "valid_from", "valid_until", "related_matter", "retention",
)


def _holder(i: int, person: bool) -> tuple[str, str]:
    if person:
        born = date(1970, 1, 1) + timedelta(days=(i * 37) % 12000)
        return f"张{'伟芳娜敏静丽强磊军洋'[i % 10]}", make_id_number(f"110105{born:%Y%m%d}{i % 1000:03d}")
    return f"示范{i:05d}科技有限公司", make_credit_code(f"91330100MA{i:07d}")


def sample_rows(count: int, *, start: int = 0, formats: tuple[str, ...] = ("pdf", "ofd")) -> list[dict[str, str]]:
    today = date.today()
    rows = []
    for i in range(start, start + count):
        kind = LICENCE_TYPES[i % len(LICENCE_TYPES)]
        fmt = formats[i % len(formats)]
        holder_name, holder_code = _holder(i, kind.holder_is_person)
        serial = f"{today.year}{i:07d}"
        issued = today - timedelta(days=i % 300)
        rows.append({
            "file": f"{kind.name}-{i:06d}.{fmt}", "format": fmt,
            "licence_id": make_licence_id(kind.code, ISSUER_CODE, serial),
            "licence_number": f"{kind.code[-3:]}{serial}", "licence_type": kind.name,
            "holder_name": holder_name, "holder_code": holder_code,
            "issuer_name": ISSUER_NAME, "issuer_code": ISSUER_CODE,
            "issue_date": issued.isoformat(), "valid_from": issued.isoformat(),
            "valid_until": "" if kind.name == "营业执照" else (issued + timedelta(days=5 * 365)).isoformat(),
            "related_matter": kind.matter, "retention": kind.retention,
        })
    return rows


def certificate_fields(row: dict[str, str]) -> dict[str, str]:
    """What is printed on the certificate."""
    return {
        "证照编号": row["licence_number"], "持证主体": row["holder_name"], "统一社会信用代码": row["holder_code"],
        "关联事项": row["related_matter"], "有效期": f"{row['valid_from']} 至 {row['valid_until'] or '长期'}",
        "发证机关": row["issuer_name"], "发证日期": row["issue_date"],
    }


def render_certificate(row: dict[str, str]) -> bytes:
    if row["format"] == "pdf":
        from stamping.pdf.samples import make_sample_certificate_pdf

        return make_sample_certificate_pdf(certificate_fields(row), row["licence_type"])
    from stamping.ofd.writer import make_sample_certificate_ofd

    return make_sample_certificate_ofd(certificate_fields(row), row["licence_type"])


def write_batch(folder: Path, count: int, *, bad: bool = True, formats: tuple[str, ...] = ("pdf", "ofd"),
                manifest: str = "csv", start: int = 0) -> dict[str, int]:
    """Write ``count`` certificates and their manifest into ``folder``.

    With ``bad``, four more rows are broken on purpose; returns the expected counts. ``start`` offsets
    the serial numbers, so batches with different starts hold different certificates.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = sample_rows(count, start=start, formats=formats)
    cache: dict[tuple[str, str], bytes] = {}
    for row in rows:
        # Certificates of one type and format share a layout; render each distinct page once per
        # holder only when the batch is small, so 10,000-document benchmarks stay quick to build.
        key = (row["licence_type"], row["format"]) if count > 200 else (row["file"], "")
        if key not in cache:
            cache[key] = render_certificate(row)
        (folder / row["file"]).write_bytes(cache[key])
    bad_rows = 0
    if bad:
        extra = sample_rows(4, start=start + count, formats=formats)
        extra[0]["holder_code"] = extra[0]["holder_code"][:-1] + ("0" if extra[0]["holder_code"][-1] != "0" else "1")
        extra[1]["file"] = "missing-" + extra[1]["file"]
        extra[2]["file"] = extra[2]["file"].rsplit(".", 1)[0] + ".pdf"
        extra[2]["format"] = "pdf"
        extra[3]["licence_number"] = rows[0]["licence_number"]
        for i, row in enumerate(extra):
            if i == 1:
                continue
            data = b"not a certificate at all" if i == 2 else render_certificate(row)
            (folder / row["file"]).write_bytes(data)
        rows.extend(extra)
        bad_rows = 5  # the duplicate 证照编号 quarantines both rows that carry it
    if manifest == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        (folder / "manifest.csv").write_text(buf.getvalue(), encoding="utf-8")
    else:
        import json

        (folder / "manifest.json").write_text(json.dumps({"documents": rows}, ensure_ascii=False), encoding="utf-8")
    return {"documents": len(rows), "good": len(rows) - bad_rows, "bad": bad_rows}

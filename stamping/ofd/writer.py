"""A small OFD writer for sample 1-page certificates (营业执照, 许可证…), used by demos,
tests and benchmarks. Elements are written in the schema's order (GB/T 33190 annex XSDs)."""

from __future__ import annotations

import uuid
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from stamping.ofd.xmlns import OFD_NS
from stamping.ofd.zipbuild import ZipBuilder
from stamping.sample_layout import PAGE_H, PAGE_W, advance, certificate_text, title_of

FONT_ID = 2
_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".")


class _Page:
    def __init__(self) -> None:
        self.objects: list[str] = []
        self.next_id = 4  # 1 page, 2 font, 3 layer

    def text(self, x: float, y: float, s: str, size: float, bold: bool = False) -> None:
        """Text with its top-left corner at (x, y) mm; the baseline sits one font size lower."""
        if not s:
            return
        width = sum(advance(c, size) for c in s)
        deltas = " ".join(_fmt(advance(c, size)) for c in s[:-1])
        delta_attr = f" DeltaX={quoteattr(deltas)}" if deltas else ""
        weight = ' Weight="700"' if bold else ""
        self.objects.append(
            f'<ofd:TextObject ID="{self.next_id}" Boundary="{_fmt(x)} {_fmt(y)} {_fmt(width)} '
            f'{_fmt(size * 1.3)}" Font="{FONT_ID}" Size="{_fmt(size)}"{weight}>'
            f'<ofd:FillColor Value="0 0 0"/>'
            f'<ofd:TextCode X="0" Y="{_fmt(size)}"{delta_attr}>{escape(s)}</ofd:TextCode></ofd:TextObject>'
        )
        self.next_id += 1

    def frame(self, x: float, y: float, w: float, h: float, line: float = 0.8) -> None:
        self.objects.append(
            f'<ofd:PathObject ID="{self.next_id}" Boundary="{_fmt(x)} {_fmt(y)} {_fmt(w)} {_fmt(h)}" '
            f'LineWidth="{_fmt(line)}"><ofd:StrokeColor Value="160 40 40"/>'
            f'<ofd:AbbreviatedData>M 0 0 L {_fmt(w)} 0 L {_fmt(w)} {_fmt(h)} L 0 {_fmt(h)} C'
            f'</ofd:AbbreviatedData></ofd:PathObject>'
        )
        self.next_id += 1


def _layout(fields: dict[str, str], title: str) -> _Page:
    page = _Page()
    page.frame(10, 10, PAGE_W - 20, PAGE_H - 20)
    page.frame(13, 13, PAGE_W - 26, PAGE_H - 26, 0.3)
    for run in certificate_text(fields, title):
        page.text(run.x, run.y, run.text, run.size, bold=run.bold)
    return page


def make_sample_certificate_ofd(fields: dict[str, str], licence_type: str) -> bytes:
    """A 1-page certificate as an OFD package: title, 统一社会信用代码, the fields in order,
    发证机关, a date line and （盖章）, in the named font 宋体 (a reader substitutes a CJK font)."""
    title = title_of(licence_type)
    page = _layout(fields, title)
    ns = f'xmlns:ofd="{OFD_NS}"'
    ofd_xml = (
        f'{_HEADER}<ofd:OFD {ns} Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo>'
        f"<ofd:DocID>{uuid.uuid4().hex}</ofd:DocID><ofd:Title>{escape(title)}</ofd:Title>"
        f"<ofd:CreationDate>{date.today().isoformat()}</ofd:CreationDate>"
        f"<ofd:Creator>SealFlow</ofd:Creator><ofd:CreatorVersion>0.1</ofd:CreatorVersion>"
        f"</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    document = (
        f'{_HEADER}<ofd:Document {ns}><ofd:CommonData><ofd:MaxUnitID>{page.next_id - 1}</ofd:MaxUnitID>'
        f"<ofd:PageArea><ofd:PhysicalBox>0 0 {_fmt(PAGE_W)} {_fmt(PAGE_H)}</ofd:PhysicalBox></ofd:PageArea>"
        f"<ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>"
        f'<ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>'
    )
    public_res = (
        f'{_HEADER}<ofd:Res {ns} BaseLoc="Res"><ofd:Fonts>'
        f'<ofd:Font ID="{FONT_ID}" FontName="宋体" FamilyName="宋体" Charset="unicode"/>'
        f"</ofd:Fonts></ofd:Res>"
    )
    content = (
        f'{_HEADER}<ofd:Page {ns}><ofd:Content><ofd:Layer ID="3">'
        + "".join(page.objects)
        + "</ofd:Layer></ofd:Content></ofd:Page>"
    )
    zb = ZipBuilder()
    zb.add("OFD.xml", ofd_xml.encode())
    zb.add("Doc_0/Document.xml", document.encode())
    zb.add("Doc_0/PublicRes.xml", public_res.encode())
    zb.add("Doc_0/Pages/Page_0/Content.xml", content.encode())
    return zb.finish()


def sample_business_licence_fields(index: int = 0) -> dict[str, str]:
    """Plausible 营业执照 fields for demos and benchmarks (fictitious unit)."""
    return {
        "统一社会信用代码": f"91450100MA5L{index:06d}"[:18],
        "名称": f"南宁市示例科技有限公司{index or ''}",
        "类型": "有限责任公司（自然人投资或控股）",
        "法定代表人": "张三",
        "经营范围": "软件开发；信息技术咨询服务；电子印章系统集成；数据处理和存储支持服务（依法须经批准的项目，"
        "经相关部门批准后方可开展经营活动）",
        "注册资本": "壹佰万元整",
        "成立日期": "2020年01月15日",
        "住所": "南宁市青秀区民族大道100号",
        "登记机关": "南宁市市场监督管理局",
        "发证日期": "2026年11月23日",
    }

"""PDF test fixtures: a demo sealing kit (demo CA, unit signer, V4 seal) and sample certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

FIELDS = {
    "证照编号": "0012026000001", "持证主体": "示范00001科技有限公司", "统一社会信用代码": "91330100MA0000001X",
    "关联事项": "企业设立登记", "有效期": "2026-01-01 至 长期", "发证机关": "示范市市场监督管理局",
    "发证日期": "2026-01-01",
}


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory):
    from stamping.ofd.demo import make_demo_kit

    return make_demo_kit(Path(tmp_path_factory.mktemp("pdfkit")))


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    from stamping.pdf.samples import make_sample_certificate_pdf

    return make_sample_certificate_pdf(FIELDS, "营业执照")


@pytest.fixture(scope="session", params=["classic", "xref_stream"])
def any_sample_pdf(request: pytest.FixtureRequest) -> bytes:
    """A sample in both cross-reference flavours (table / PDF 1.5 stream with object streams)."""
    from stamping.pdf.samples import make_sample_certificate_pdf

    return make_sample_certificate_pdf(FIELDS, "营业执照", xref_stream=request.param == "xref_stream")

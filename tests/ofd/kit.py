"""A demo CA, a signer and a V4 seal for stamping tests (shared with tests/verify)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass
class Kit:
    ca: object
    signer: object
    seal_der: bytes
    trust: object
    root_pem_path: Path


def make_kit(directory: Path) -> Kit:
    from asn1crypto import pem

    from stamping.keys.signer import SoftwareSigner
    from stamping.pictures import demo_official_seal
    from stamping.pki.ca import DemoCA
    from stamping.pki.trust import TrustStore
    from stamping.ses.make import SealSpec, make_seal

    ca = DemoCA.create(directory / "ca")
    key, cert = ca.issue_unit_signer("南宁市示例市场监督管理局", "11450100MB1234567X")
    signer = SoftwareSigner(key, cert)
    picture = demo_official_seal("南宁市示例市场监督管理局")
    now = datetime.now(UTC)
    spec = SealSpec(es_id="45010000000001", name="南宁市示例市场监督管理局公章", seal_type=1, signer_certs=[cert],
                    valid_start=now - timedelta(days=1), valid_end=now + timedelta(days=365),
                    picture_png=picture.png, width_mm=picture.width_mm, height_mm=picture.height_mm)
    seal_der = make_seal(spec, ca.maker_signer())
    root_path = directory / "root.pem"
    root_path.write_bytes(pem.armor("CERTIFICATE", ca.root_der))
    trust = TrustStore([ca.root_der], [ca.intermediate_der])
    return Kit(ca, signer, seal_der, trust, root_path)

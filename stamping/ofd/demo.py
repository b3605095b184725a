"""A demo sealing kit (demo CA, unit signer, V4 official seal) for tests, benchmarks and demos.

Nothing here is for production seals: the CA is a local demo CA and the key lives in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DEMO_UNIT = "南宁市示例市场监督管理局"
DEMO_CREDIT_CODE = "11450100MB1234567X"
DEMO_ES_ID = "45010000000001"


@dataclass
class DemoKit:
    ca: object  # gmpki.pki.ca.DemoCA
    signer: object  # gmpki.keys.signer.Signer
    seal_der: bytes
    trust: object  # gmpki.pki.trust.TrustStore
    trust_pem_path: Path  # the root and the issuing CA: what `sealflow verify --trust` takes

    @property
    def root_pem_path(self) -> Path:
        """Kept for callers written against the first version: the same trust bundle."""
        return self.trust_pem_path


def make_demo_kit(directory: Path, unit: str = DEMO_UNIT, es_id: str = DEMO_ES_ID) -> DemoKit:
    from asn1crypto import pem

    from gmpki.keys.signer import SoftwareSigner
    from gmpki.pki.ca import DemoCA
    from gmpki.pki.trust import TrustStore
    from stamping.pictures import demo_official_seal
    from stamping.ses.make import SealSpec, make_seal

    ca = DemoCA.create(directory / "ca")
    key, cert = ca.issue_unit_signer(unit, DEMO_CREDIT_CODE)
    signer = SoftwareSigner(key, cert)
    picture = demo_official_seal(unit)
    now = datetime.now(UTC)
    spec = SealSpec(es_id=es_id, name=f"{unit}公章", seal_type=1, signer_certs=[cert],
                    valid_start=now - timedelta(days=1), valid_end=now + timedelta(days=365),
                    picture_png=picture.png, width_mm=picture.width_mm, height_mm=picture.height_mm)
    seal_der = make_seal(spec, ca.maker_signer())
    # The SES_Signature carries the signer's certificate only, so the issuing CA goes with the root.
    trust_path = directory / "trust.pem"
    trust_path.write_bytes(pem.armor("CERTIFICATE", ca.root_der) + pem.armor("CERTIFICATE", ca.intermediate_der))
    return DemoKit(ca, signer, seal_der, TrustStore([ca.root_der], [ca.intermediate_der]), trust_path)

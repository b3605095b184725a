"""Making seals and signatures, and 验章 over them: round trips, every check's reasons,
tampering, raw r||s, trust and registry status; our seals verified by gmssl too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core, x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gmpki.gm.sm2 import SM2PublicKey, signature_der_to_raw
from gmpki.gm.sm3 import sm3
from gmpki.keys.signer import SoftwareSigner
from gmpki.pki.ca import DemoCA
from gmpki.pki.trust import TrustStore
from stamping.pictures import demo_official_seal
from stamping.ses import asn1
from stamping.ses.codec import SesFormatError, parse_seal, parse_signature
from stamping.ses.make import (
    SealBindingError,
    SealSpec,
    assemble_signature,
    build_tbs_sign,
    make_seal,
    make_seal_info,
    make_signature,
)
from stamping.verdict.result import SealStatus, SignatureResult
from stamping.verdict.seal_checks import check_ses_signature

NOW = datetime.now(UTC).replace(microsecond=0)
DATA_HASH = sm3(b"<Signature/>")
PROP = "/Doc_0/Signs/Sign_0/Signature.xml"


class Kit:
    def __init__(self, directory: Path) -> None:
        self.ca = DemoCA.create(directory / "ca")
        self.maker = self.ca.maker_signer()
        # NOW is taken when the module is collected; the whole suite may reach this fixture minutes later.
        since = NOW - timedelta(days=1)
        key, cert = self.ca.issue_unit_signer("南宁市测试局", "11450100MB0000000X", not_before=since)
        self.signer = SoftwareSigner(key, cert)
        key2, cert2 = self.ca.issue_unit_signer("另一个单位", "11450100MB0000001Y", not_before=since)
        self.other = SoftwareSigner(key2, cert2)
        self.trust = TrustStore([self.ca.root_der], [self.ca.intermediate_der])
        self.spec = SealSpec(
            es_id="4501000000001", name="南宁市测试局", seal_type=1, signer_certs=[cert],
            valid_start=NOW - timedelta(days=1), valid_end=NOW + timedelta(days=365),
            picture_png=demo_official_seal("南宁市测试局").png, width_mm=42, height_mm=42, create_date=NOW)
        self.seal_der = make_seal(self.spec, self.maker)
        self.der = self.sign()  # one fixed signature: SM2 values differ run to run

    def sign(self, **kw: object) -> bytes:
        return make_signature(self.seal_der, DATA_HASH, PROP, self.signer, kw.get("at", NOW))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(tmp_path_factory.mktemp("ses"))


def _verify(der: bytes, trust: TrustStore | None, lookup=None, expected: bytes | None = DATA_HASH) -> SignatureResult:
    result = SignatureResult()
    check_ses_signature(result, parse_signature(der), expected, trust, lookup)
    return result


def _checks(result: SignatureResult) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.reason) for c in result.checks}


def test_make_seal_round_trip(kit: Kit) -> None:
    seal = parse_seal(kit.seal_der)
    assert (seal.version, seal.es_id, seal.name, seal.seal_type, seal.vid) == (
        4, "4501000000001", "南宁市测试局", 1, "SealFlow")
    assert seal.cert_list == [kit.signer.certificate]
    assert seal.maker_cert == kit.maker.certificate
    assert (seal.valid_start, seal.valid_end, seal.create_date) == (
        kit.spec.valid_start, kit.spec.valid_end, NOW)
    assert (seal.picture_type, seal.picture_data, seal.picture_width_mm) == ("PNG", kit.spec.picture_png, 42)
    assert seal.signed_bytes == make_seal_info(kit.spec).dump()
    assert SM2PublicKey.from_certificate(kit.maker.certificate).verify(seal.signed_value, seal.signed_bytes)
    assert seal.signed_value[:1] == b"\x30"  # DER signature value


def test_our_seal_verifies_with_gmssl(kit: Kit) -> None:
    """Independent path: gmssl's pure-Python SM2 over DER(SES_SealInfo)."""
    from gmssl import sm2

    seal = parse_seal(kit.seal_der)
    spki = x509.Certificate.load(seal.maker_cert)["tbs_certificate"]["subject_public_key_info"]
    point = spki["public_key"].contents[1:]
    assert point[0] == 4 and len(point) == 65
    verifier = sm2.CryptSM2(public_key="00", private_key=None)
    verifier.public_key = point[1:].hex()  # set directly: its constructor lstrip("04")s the key
    raw = signature_der_to_raw(seal.signed_value).hex()
    assert verifier.verify_with_sm3(raw, seal.signed_bytes)
    assert not verifier.verify_with_sm3(raw, seal.signed_bytes[:-1] + b"\x00")


def test_make_signature_round_trip_all_checks_pass(kit: Kit) -> None:
    der = kit.sign()
    sig = parse_signature(der)
    assert (sig.version, sig.data_hash, sig.property_info, sig.time_info) == (4, DATA_HASH, PROP, NOW)
    assert sig.seal_der == kit.seal_der and sig.signer_cert == kit.signer.certificate
    result = _verify(der, kit.trust)
    assert result.valid, result.to_json()
    assert set(_checks(result)) == {"data_hash", "signer_signature", "maker_signature", "signer_in_cert_list",
                                    "seal_validity_at_signing", "signer_cert_validity", "signer_chain",
                                    "maker_chain", "seal_status", "signing_time"}
    assert result.seal_name == "南宁市测试局" and result.es_id == "4501000000001"
    assert result.signer and result.signed_at == NOW.isoformat()
    assert result.seal_picture_png == kit.spec.picture_png


def test_raw_r_s_signature_accepted(kit: Kit) -> None:
    sig = parse_signature(kit.sign())
    raw = signature_der_to_raw(sig.signature)
    der = assemble_signature(sig.signed_bytes, sig.signer_cert, raw)
    result = _verify(der, kit.trust)
    assert len(parse_signature(der).signature) == 64
    assert _checks(result)["signer_signature"][0], result.to_json()


def test_data_hash_mismatch_named(kit: Kit) -> None:
    result = _verify(kit.sign(), kit.trust, expected=sm3(b"other"))
    ok, reason = _checks(result)["data_hash"]
    assert not ok and "does not match" in reason
    assert not result.intact


def test_no_trust_store_is_intact_but_untrusted(kit: Kit) -> None:
    result = _verify(kit.sign(), None)
    assert result.intact and not result.trusted
    assert _checks(result)["signer_chain"] == (False, "no trusted roots configured")
    assert _checks(result)["maker_chain"] == (False, "no trusted roots configured")


def test_foreign_root_not_trusted_but_intact(kit: Kit, tmp_path: Path) -> None:
    other = DemoCA.create(tmp_path / "other", name="Other")
    result = _verify(kit.sign(), TrustStore([other.root_der]))
    assert result.intact and not result.trusted
    ok, reason = _checks(result)["signer_chain"]
    assert not ok and "does not chain to a trusted root" in reason


def test_signer_not_in_cert_list(kit: Kit) -> None:
    with pytest.raises(SealBindingError):
        make_signature(kit.seal_der, DATA_HASH, PROP, kit.other, NOW)
    tbs = build_tbs_sign(kit.seal_der, DATA_HASH, PROP, NOW)
    der = assemble_signature(tbs, kit.other.certificate, kit.other.sign(tbs))
    result = _verify(der, kit.trust)
    assert _checks(result)["signer_signature"][0]
    ok, reason = _checks(result)["signer_in_cert_list"]
    assert not ok and "not among" in reason
    assert not result.intact


def test_signed_outside_seal_validity(kit: Kit) -> None:
    result = _verify(kit.sign(at=NOW + timedelta(days=400)), kit.trust)
    ok, reason = _checks(result)["seal_validity_at_signing"]
    assert not ok and "after the seal expired" in reason
    result = _verify(kit.sign(at=NOW - timedelta(days=2)), kit.trust)
    ok, reason = _checks(result)["seal_validity_at_signing"]
    assert not ok and "before the seal became valid" in reason
    assert result.intact and not result.valid


def test_signer_certificate_validity(kit: Kit) -> None:
    result = _verify(kit.sign(at=NOW + timedelta(days=40 * 365)), kit.trust)
    ok, reason = _checks(result)["signer_cert_validity"]
    assert not ok and "outside the signer certificate's validity" in reason


@pytest.mark.parametrize(("status", "ok", "words"), [
    (None, True, "not in our registry"), (SealStatus.ACTIVE, True, "active"),
    (SealStatus.REVOKED, False, "revoked"), (SealStatus.SUSPENDED, False, "suspended")])
def test_seal_status(kit: Kit, status: SealStatus | None, ok: bool, words: str) -> None:
    seen: list[tuple[str, datetime]] = []

    def lookup(es_id: str, at: datetime) -> SealStatus | None:
        seen.append((es_id, at))
        return status

    result = _verify(kit.sign(), kit.trust, lookup)
    got_ok, reason = _checks(result)["seal_status"]
    assert got_ok is ok and words in reason
    # at the signing time, and — the time being only claimed (no token) — now as well
    assert ("4501000000001", NOW) in seen and len(seen) == 2
    assert result.valid is ok


def test_cert_digest_list_seal(kit: Kit) -> None:
    """certListType 2: the seal holds an SM3 digest of the signer certificate."""
    info = make_seal_info(kit.spec)
    digests = asn1.CertDigestList([{"type": "SM3", "value": sm3(kit.signer.certificate)}])
    prop = info["property"]
    prop["cert_list_type"] = 2
    prop["cert_list"] = core.Any.load(digests.dump())
    info_der = asn1.SealInfoV4.load(info.dump(force=True)).dump()
    seal_der = asn1.SESealV4({"eseal_info": asn1.SealInfoV4.load(info_der), "cert": kit.maker.certificate,
                              "sign_alg_id": "1.2.156.10197.1.501",
                              "signed_value": kit.maker.sign(info_der)}).dump()
    seal = parse_seal(seal_der)
    assert seal.cert_list_type == 2 and seal.cert_digests == [("SM3", sm3(kit.signer.certificate))]
    der = make_signature(seal_der, DATA_HASH, PROP, kit.signer, NOW)
    result = _verify(der, kit.trust)
    assert result.valid, result.to_json()
    with pytest.raises(SealBindingError):
        make_signature(seal_der, DATA_HASH, PROP, kit.other, NOW)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_tampering_any_byte_fails_with_a_named_check(kit: Kit, data: st.DataObject) -> None:
    der = bytearray(kit.der)
    pos = data.draw(st.integers(0, len(der) - 1))
    der[pos] ^= data.draw(st.integers(1, 255))
    try:
        sig = parse_signature(bytes(der))
    except SesFormatError:
        return  # refused as malformed: a named failure too
    result = SignatureResult()
    check_ses_signature(result, sig, DATA_HASH, kit.trust, None)
    failed = [c for c in result.checks if not c.ok]
    assert failed, f"byte {pos} changed and every check passed"
    assert all(c.reason for c in failed)


@pytest.mark.parametrize(("where", "expect_failed"), [
    ("name", {"maker_signature", "signer_signature"}),
    ("picture", {"maker_signature", "signer_signature"}),
    ("hash", {"data_hash", "signer_signature"}),
    ("signature", {"signer_signature"}),
    ("maker_value", {"maker_signature", "signer_signature"}),
])
def test_tampering_named_parts(kit: Kit, where: str, expect_failed: set[str]) -> None:
    der = bytearray(kit.sign())
    sig = parse_signature(bytes(der))
    needle = {"name": "南宁市测试局".encode(), "picture": kit.spec.picture_png[100:140], "hash": DATA_HASH,
              "signature": sig.signature[10:40], "maker_value": sig.seal.signed_value[10:40]}[where]
    pos = bytes(der).index(needle) + 5
    der[pos] ^= 0x01
    result = _verify(bytes(der), kit.trust)
    failed = {c.name for c in result.checks if not c.ok}
    assert failed == expect_failed, result.to_json()
    assert not result.intact


def test_only_v4_v5_seals_make_new_signatures(interop_dir: Path, kit: Kit) -> None:
    with pytest.raises(SesFormatError, match="version 1"):
        make_signature((interop_dir / "UserV1.esl").read_bytes(), DATA_HASH, PROP, kit.signer, NOW)


def test_invalid_specs_refused(kit: Kit) -> None:
    from dataclasses import replace

    for bad in (replace(kit.spec, es_id="编码"), replace(kit.spec, name=" "), replace(kit.spec, signer_certs=[]),
                replace(kit.spec, valid_end=kit.spec.valid_start), replace(kit.spec, picture_png=b"nope")):
        with pytest.raises(ValueError):
            make_seal(bad, kit.maker)


def test_v1_signature_path(interop_dir: Path, kit: Kit) -> None:
    """A GM/T 0031-2014 SES_Signature (text timeInfo, cert inside TBS_Sign) verifies over DER(TBS_Sign)."""
    seal_der = (interop_dir / "UserV1.esl").read_bytes()
    tbs = asn1.TBSSignV1({
        "version": 1, "eseal": core.Any.load(seal_der), "time_info": b"20210101120000",
        "data_hash": DATA_HASH, "property_info": PROP, "cert": kit.signer.certificate,
        "signature_algorithm": "1.2.156.10197.1.501"}).dump()
    der = asn1.SESSignatureV1({"to_sign": asn1.TBSSignV1.load(tbs), "signature": kit.signer.sign(tbs)}).dump()
    sig = parse_signature(der)
    assert sig.version == 1 and sig.seal.version == 1 and sig.seal_der == seal_der
    assert sig.time_info == datetime(2021, 1, 1, 4, 0, tzinfo=UTC)  # Beijing time
    result = _verify(der, None)
    checks = _checks(result)
    assert checks["signer_signature"][0] and checks["maker_signature"][0] and checks["data_hash"][0]
    assert not checks["signer_in_cert_list"][0]  # our certificate is not the one the seal was made for


def test_jpeg_seal_picture_converted_for_reports(kit: Kit) -> None:
    import io

    from PIL import Image

    from stamping.verdict.seal_checks import picture_png

    out = io.BytesIO()
    Image.new("RGB", (100, 100), (200, 0, 0)).save(out, format="JPEG")
    seal = parse_seal(kit.seal_der)
    seal.picture_type, seal.picture_data = "JPG", out.getvalue()
    png = picture_png(seal)
    assert png is not None and png.startswith(b"\x89PNG")
    seal.picture_type, seal.picture_data = "ofd", b"PK\x03\x04"
    assert picture_png(seal) is None
    seal.picture_type, seal.picture_data = "GIF", b"GIF89a broken"
    assert picture_png(seal) is None

"""The signing time is proven by a trusted TSA or only claimed: a key kept after its seal was revoked,
reported lost or expired cannot sign "yesterday" and be believed — in OFD and in PDF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gmpki.keys.signer import SoftwareSigner
from gmpki.pki.timestamp import TimestampAuthority
from stamping.ofd.stamp import stamp_ofd
from stamping.ofd.verify import verify_ofd
from stamping.ofd.writer import make_sample_certificate_ofd, sample_business_licence_fields
from stamping.pdf.sign import stamp_pdf
from stamping.pdf.verify import verify_pdf
from stamping.pictures import demo_official_seal
from stamping.placement import Placement
from stamping.ses.make import SealSpec, make_seal
from stamping.verdict.result import SealStatus, Verdict

ANCHOR = Placement.parse("anchor:（盖章）")
NOW = datetime.now(UTC).replace(microsecond=0)
REVOKED_AT = NOW - timedelta(hours=6)
BACKDATED = NOW - timedelta(hours=12)  # inside the seal's validity (see conftest), before the revocation


def _ofd() -> bytes:
    return make_sample_certificate_ofd(sample_business_licence_fields(1), "business_licence")


def _pdf() -> bytes:
    from stamping.pdf.samples import make_sample_certificate_pdf

    return make_sample_certificate_pdf(sample_business_licence_fields(2), "business_licence")


def stamp(fmt: str, kit, **kw) -> bytes:
    if fmt == "ofd":
        return stamp_ofd(_ofd(), kw.pop("seal_der", kit.seal_der), kit.signer, ANCHOR, **kw)
    return stamp_pdf(_pdf(), kw.pop("seal_der", kit.seal_der), kit.signer, ANCHOR, **kw)


def verify(fmt: str, data: bytes, kit, lookup=None, uses=None):
    fn = verify_ofd if fmt == "ofd" else verify_pdf
    return fn(data, f"x.{fmt}", kit.trust, lookup, use_lookup=uses)


def ended_at(status: SealStatus, when: datetime):
    """A registry where the kit's seal was active until ``when`` and ``status`` from then on."""
    def lookup(es_id: str, at: datetime) -> SealStatus | None:
        return SealStatus.ACTIVE if at < when else status
    return lookup


def checks(result) -> dict:
    return {c.name: c for c in result.signatures[0].checks}


FORMATS = ["ofd", "pdf"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("status", [SealStatus.REVOKED, SealStatus.SUSPENDED])
def test_a_backdated_signature_with_a_revoked_or_lost_seal_is_not_valid(kit, fmt, status):
    """The attack: the key is used after the seal was revoked (or reported lost, i.e. suspended),
    with a signing time set back into the time the seal was active, and no time-stamp token."""
    forged = stamp(fmt, kit, signed_at=BACKDATED)
    result = verify(fmt, forged, kit, ended_at(status, REVOKED_AT))
    assert result.verdict == Verdict.NOT_VALID and result.intact
    reason = checks(result)["signing_time"].reason
    assert "signing time not proven" in reason and f"is {status.value} now" in reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_backdated_signature_with_an_expired_seal_is_not_valid(kit, fmt):
    from asn1crypto import x509

    cert = x509.Certificate.load(kit.signer.certificate)
    start = cert["tbs_certificate"]["validity"]["not_before"].native
    picture = demo_official_seal("过期单位")
    expired = make_seal(SealSpec(es_id="45010000000099", name="过期公章", seal_type=1,
                                 signer_certs=[kit.signer.certificate], valid_start=start,
                                 valid_end=NOW - timedelta(minutes=1), picture_png=picture.png,
                                 width_mm=picture.width_mm, height_mm=picture.height_mm), kit.ca.maker_signer())
    forged = stamp(fmt, kit, seal_der=expired, signed_at=NOW - timedelta(minutes=2))
    result = verify(fmt, forged, kit)
    assert result.verdict == Verdict.NOT_VALID
    assert "expired on" in checks(result)["signing_time"].reason
    assert checks(result)["seal_validity_at_signing"].ok  # the claimed time alone would have passed


@pytest.mark.parametrize("fmt", FORMATS)
def test_with_a_token_the_revocation_is_judged_at_the_proven_time(kit, tsa, fmt):
    """Signed now, after the revocation, with an honest token: the seal was revoked then."""
    signed = stamp(fmt, kit, signed_at=BACKDATED, timestamper=tsa)
    result = verify(fmt, signed, kit, ended_at(SealStatus.REVOKED, REVOKED_AT))
    assert result.verdict == Verdict.NOT_VALID
    c = checks(result)
    assert c["timestamp"].ok and "trusted TSA" in c["timestamp"].reason
    assert c["signing_time"].ok and "proven" in c["signing_time"].reason
    assert not c["seal_status"].ok and "revoked" in c["seal_status"].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_signature_time_stamped_before_the_revocation_stays_valid(kit, fmt):
    """The point of the token: what was sealed while the seal was good stays good afterwards."""
    chain = [kit.ca.intermediate_der]
    key, cert = kit.ca.issue_tsa("TSA with a clock", not_before=NOW - timedelta(days=30))
    then = TimestampAuthority(SoftwareSigner(key, cert), chain, clock=lambda: BACKDATED)
    signed = stamp(fmt, kit, signed_at=BACKDATED, timestamper=then)
    result = verify(fmt, signed, kit, ended_at(SealStatus.REVOKED, REVOKED_AT))
    assert result.verdict == Verdict.VALID, [f"{c.name}: {c.reason}" for c in result.signatures[0].checks]
    assert result.signatures[0].signed_at == BACKDATED.isoformat()


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_token_of_another_signature_is_an_integrity_failure(kit, tsa, fmt):
    """An attacker copies an honest token from an older signature into the backdated one."""
    honest_token = tsa.timestamp(b"the signature value of an older, honest document")

    class Replay:
        def timestamp(self, _signature_value: bytes) -> bytes:
            return honest_token

    forged = stamp(fmt, kit, signed_at=BACKDATED, timestamper=Replay())
    result = verify(fmt, forged, kit, ended_at(SealStatus.REVOKED, REVOKED_AT))
    assert result.verdict == Verdict.NOT_VALID and not result.intact
    assert "messageImprint" in checks(result)["timestamp"].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_token_from_an_untrusted_tsa_proves_nothing_and_warns(kit, fmt, tmp_path):
    from gmpki.pki.ca import DemoCA

    stranger = DemoCA.create(tmp_path / "stranger", name="Stranger")
    key, cert = stranger.issue_tsa("Stranger TSA")
    theirs = TimestampAuthority(SoftwareSigner(key, cert), [stranger.intermediate_der], clock=lambda: BACKDATED)
    forged = stamp(fmt, kit, signed_at=BACKDATED, timestamper=theirs)
    result = verify(fmt, forged, kit, ended_at(SealStatus.REVOKED, REVOKED_AT))
    assert result.verdict == Verdict.NOT_VALID
    c = checks(result)
    assert not c["timestamp"].ok and c["timestamp"].kind == "warning"
    assert "signing time not proven" in c["signing_time"].reason
    honest = verify(fmt, forged, kit)  # the seal is still good: intact and trusted, with a warning
    assert honest.verdict == Verdict.VALID_WITH_WARNINGS


@pytest.mark.parametrize("fmt", FORMATS)
def test_our_time_stamped_seals_are_valid_and_say_the_time_is_proven(kit, tsa, fmt):
    result = verify(fmt, stamp(fmt, kit, timestamper=tsa), kit, ended_at(SealStatus.REVOKED, NOW + timedelta(days=1)))
    assert result.verdict == Verdict.VALID
    assert checks(result)["timestamp"].ok and checks(result)["signing_time"].ok


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_a_token_the_report_says_the_time_is_only_claimed(kit, fmt):
    result = verify(fmt, stamp(fmt, kit), kit)
    assert result.verdict == Verdict.VALID  # as before: nothing has ended
    assert "claimed by the signer" in checks(result)["signing_time"].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_with_the_registry_a_signature_must_be_an_audited_use(kit, tsa, fmt):
    from gmpki.keys.signer import RecordingSigner

    recorded: set[bytes] = set()
    signer = RecordingSigner(kit.signer)
    ours = stamp_ofd(_ofd(), kit.seal_der, signer, ANCHOR, timestamper=tsa) if fmt == "ofd" else \
        stamp_pdf(_pdf(), kit.seal_der, signer, ANCHOR, timestamper=tsa)
    recorded.add(signer.last)

    def uses(es_id: str, signature_value: bytes) -> bool | None:
        return signature_value in recorded if es_id == "45010000000001" else None

    good = verify(fmt, ours, kit, uses=uses)
    assert good.verdict == Verdict.VALID and checks(good)["use_recorded"].ok
    outside = verify(fmt, stamp(fmt, kit, timestamper=tsa), kit, uses=uses)  # same key, never audited
    assert outside.verdict == Verdict.NOT_VALID
    assert "not recorded as a use" in checks(outside)["use_recorded"].reason


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_token_dated_in_the_future_proves_nothing(kit, fmt):
    key, cert = kit.ca.issue_tsa("TSA with a fast clock")
    fast = TimestampAuthority(SoftwareSigner(key, cert), [kit.ca.intermediate_der],
                              clock=lambda: NOW + timedelta(days=2))
    result = verify(fmt, stamp(fmt, kit, timestamper=fast), kit)
    assert result.verdict != Verdict.VALID
    c = checks(result)
    assert not c["timestamp"].ok and "in the future" in c["timestamp"].reason
    assert "claimed by the signer" in c["signing_time"].reason

"""The time-stamp authority over HTTP, and tokens that must not prove a time: forged, foreign, untrusted."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from asn1crypto import x509

from gmpki.keys.signer import SoftwareSigner
from gmpki.pki.ca import DemoCA
from gmpki.pki.timestamp import (
    TIME_STAMPING_EKU,
    TimestampAuthority,
    TimestampError,
    imprint_of,
    read_token,
    request_der,
    token_from_response,
    verify_token,
)
from gmpki.pki.tsa_client import TsaClient, TsaUnavailable
from kernel.settings import local_url
from sealflow.stack.ports import free_port

SIGNATURE = b"\x30\x44" + b"\x02\x20" + b"\x11" * 32 + b"\x02\x20" + b"\x22" * 32


def _post(url: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", parts.path or "/", body=body, headers={"Content-Type": content_type})
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read()
    finally:
        conn.close()


def test_a_token_from_the_tsa_over_http_proves_when_the_signature_existed(kit, tsa):
    before = datetime.now(UTC).replace(microsecond=0)
    token = tsa.timestamp(SIGNATURE)
    check = verify_token(token, SIGNATURE, kit.trust)
    assert check.intact and check.trusted and check.proven, check.reason
    assert before <= check.gen_time <= datetime.now(UTC) + timedelta(seconds=1)
    info = read_token(token)
    assert info.imprint == imprint_of(SIGNATURE) and info.signature_oid == "1.2.156.10197.1.501"


def test_the_tsa_speaks_rfc3161_content_types_and_refuses_what_it_cannot_stamp(tsa_url):
    body = request_der(imprint_of(SIGNATURE), nonce=7)
    status, ctype, _ = _post(tsa_url, body, "application/octet-stream")
    assert status == 415
    status, ctype, reply = _post(tsa_url, body, "application/timestamp-query")
    assert status == 200 and ctype == "application/timestamp-reply"
    assert read_token(token_from_response(reply, imprint_of(SIGNATURE), 7)).nonce == 7
    sha1 = request_der(b"\x01" * 20, nonce=8, hash_oid="1.3.14.3.2.26")
    with pytest.raises(TimestampError, match="bad_alg"):
        token_from_response(_post(tsa_url, sha1, "application/timestamp-query")[2], b"\x01" * 20, 8)
    with pytest.raises(TimestampError, match="bad_data_format"):
        token_from_response(_post(tsa_url, b"\x30\x03junk", "application/timestamp-query")[2], b"", None)


def test_a_reply_to_another_request_is_refused_by_the_client(tsa_url):
    reply = _post(tsa_url, request_der(imprint_of(SIGNATURE), nonce=1), "application/timestamp-query")[2]
    with pytest.raises(TimestampError, match="nonce"):
        token_from_response(reply, imprint_of(SIGNATURE), 2)
    with pytest.raises(TimestampError, match="another imprint"):
        token_from_response(reply, imprint_of(b"other"), 1)


def test_an_unreachable_tsa_is_named_with_what_to_run():
    port = free_port()
    with pytest.raises(TsaUnavailable, match=rf"127.0.0.1:{port}.*sealflow stack up"):
        TsaClient(local_url(port, "/"), timeout=2, retries=1).timestamp(SIGNATURE)


def test_the_tsa_certificate_is_a_critical_time_stamping_certificate(kit, tsa):
    cert = x509.Certificate.load(read_token(tsa.timestamp(SIGNATURE)).tsa_cert)
    eku = next(e for e in cert["tbs_certificate"]["extensions"] if e["extn_id"].native == "extended_key_usage")
    assert eku["critical"].native and [p.dotted for p in eku["extn_value"].parsed] == [TIME_STAMPING_EKU]
    assert kit.trust.validate(cert.dump()).ok


def _tsa_cert_and_key(kit):
    key, cert = kit.ca.issue_tsa("Forged-test TSA")
    return key, cert


def test_a_token_signed_with_another_key_than_its_certificate_is_broken(kit):
    _, cert = _tsa_cert_and_key(kit)
    other_key, _ = kit.ca.issue_tsa("someone else")
    forged = TimestampAuthority(SoftwareSigner(other_key, cert)).timestamp(SIGNATURE)
    check = verify_token(forged, SIGNATURE, kit.trust)
    assert not check.intact and not check.proven and "does not verify" in check.reason


def test_a_token_over_another_signature_is_broken(kit, tsa):
    check = verify_token(tsa.timestamp(b"another signature value"), SIGNATURE, kit.trust)
    assert not check.intact and not check.proven and "messageImprint" in check.reason


def test_a_changed_token_time_is_broken(kit, tsa):
    token = tsa.timestamp(SIGNATURE)
    year = str(datetime.now(UTC).year).encode()
    tampered = token.replace(year, str(datetime.now(UTC).year - 1).encode(), 1)
    assert tampered != token
    check = verify_token(tampered, SIGNATURE, kit.trust)
    assert not check.proven and not check.intact, check.reason


def test_a_token_from_a_tsa_outside_the_trust_roots_proves_nothing(kit, tmp_path):
    stranger = DemoCA.create(tmp_path / "stranger", name="Stranger")
    key, cert = stranger.issue_tsa("Stranger TSA")
    token = TimestampAuthority(SoftwareSigner(key, cert), [stranger.intermediate_der]).timestamp(SIGNATURE)
    check = verify_token(token, SIGNATURE, kit.trust)
    assert check.intact and not check.trusted and not check.proven and "not trusted" in check.reason


def test_a_token_from_a_certificate_without_the_time_stamping_purpose_proves_nothing(kit):
    key, cert = kit.ca.issue_unit_signer("Not a TSA", "91450000000000001X")
    token = TimestampAuthority(SoftwareSigner(key, cert), [kit.ca.intermediate_der]).timestamp(SIGNATURE)
    check = verify_token(token, SIGNATURE, kit.trust)
    assert check.intact and not check.proven and "id-kp-timeStamping" in check.reason


def test_a_token_made_while_the_tsa_certificate_was_not_valid_proves_nothing(kit):
    past = datetime.now(UTC) - timedelta(days=30)
    key, cert = kit.ca.issue_tsa("Short-lived TSA", not_before=past, not_after=past + timedelta(days=1))
    token = TimestampAuthority(SoftwareSigner(key, cert), clock=lambda: datetime.now(UTC)).timestamp(SIGNATURE)
    check = verify_token(token, SIGNATURE, kit.trust)
    assert check.intact and not check.proven and "expired" in check.reason


def test_garbage_is_never_a_token(kit):
    for junk in (b"", b"\x30\x00", b"\x30\x80" + b"\x00" * 10, SIGNATURE):
        assert not verify_token(junk, SIGNATURE, kit.trust).proven


def test_the_tsa_program_runs_on_its_own_and_answers_over_http(kit, tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stamping.tsa.server", "--port", str(port), "--dir",
                             str(tmp_path / "tsa"), "--ca", str(kit.ca.directory)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        client = TsaClient(local_url(port, "/"), retries=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                token = client.timestamp(SIGNATURE)
                break
            except TsaUnavailable:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert verify_token(token, SIGNATURE, kit.trust).proven
        assert (tmp_path / "tsa" / "tsa-key.pem").stat().st_mode & 0o077 == 0
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command")
def test_openssl_reads_our_tsa_replies(tsa_url, tmp_path):
    """OpenSSL 3.0 parses our replies; `openssl ts -verify` cannot check SM2 certificates with the
    standard user id (it uses an empty one), so the verification itself stays with SealFlow and pyHanko."""
    reply = _post(tsa_url, request_der(imprint_of(SIGNATURE), nonce=9), "application/timestamp-query")[2]
    (tmp_path / "r.der").write_bytes(reply)
    out = subprocess.run(["openssl", "ts", "-reply", "-in", str(tmp_path / "r.der"), "-text"],
                         capture_output=True, text=True, check=True).stdout
    assert "Status: Granted." in out and "Hash Algorithm: sm3" in out and "Nonce: 0x09" in out

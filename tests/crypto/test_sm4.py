"""SM4-GCM: the RFC 8998 known answer, round trips, and every kind of tampering detected."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gmpki.gm.sm4 import DecryptionFailed, decrypt_gcm, encrypt_gcm

# RFC 8998, Appendix A.1 (SM4-GCM)
KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
IV = bytes.fromhex("00001234567800000000ABCD")
AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
PLAIN = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                      "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
CIPHER = bytes.fromhex("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                       "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")


def test_rfc8998_known_answer() -> None:
    assert decrypt_gcm(KEY, IV + CIPHER + TAG, AAD) == PLAIN
    with pytest.raises(DecryptionFailed):
        decrypt_gcm(KEY, IV + CIPHER + TAG, AAD[:-1])


def test_fresh_nonce_each_time() -> None:
    a, b = encrypt_gcm(KEY, PLAIN), encrypt_gcm(KEY, PLAIN)
    assert a[:12] != b[:12] and a != b
    assert decrypt_gcm(KEY, a) == decrypt_gcm(KEY, b) == PLAIN


@settings(max_examples=25, deadline=None)
@given(plain=st.binary(max_size=300), aad=st.binary(max_size=40), bit=st.integers(min_value=0))
def test_any_flipped_bit_is_detected(plain: bytes, aad: bytes, bit: int) -> None:
    blob = encrypt_gcm(KEY, plain, aad)
    assert decrypt_gcm(KEY, blob, aad) == plain
    flipped = bytearray(blob)
    pos = bit % (len(flipped) * 8)
    flipped[pos // 8] ^= 1 << (pos % 8)
    with pytest.raises(DecryptionFailed):
        decrypt_gcm(KEY, bytes(flipped), aad)
    with pytest.raises(DecryptionFailed):
        decrypt_gcm(KEY, blob, aad + b"x")
    with pytest.raises(DecryptionFailed):
        decrypt_gcm(bytes(16), blob, aad)
    with pytest.raises(DecryptionFailed):
        decrypt_gcm(KEY, blob[:27], aad)

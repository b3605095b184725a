"""KEK escrow: any k of n shares rebuild the KEK, fewer or wrong ones are refused."""

from __future__ import annotations

import itertools
import secrets

import pytest

from gmpki.keys.escrow import EscrowError, Share, combine, interpolate, split, split_integer


def test_known_answer_the_textbook_polynomial_gives_the_textbook_shares():
    # f(x) = 1234 + 166x + 94x² mod 1613 (Shamir's scheme as commonly taught): shares 1..6 are known.
    points = split_integer(1234, 6, 3, coefficients=[166, 94], prime=1613)
    assert points == [(1, 1494), (2, 329), (3, 965), (4, 176), (5, 1188), (6, 775)]
    assert interpolate([(2, 329), (4, 176), (5, 1188)], prime=1613) == 1234


def test_known_answer_in_the_real_field():
    # f(x) = 7 + 2x + 3x² over GF(2^521 - 1): small values, checkable by hand.
    assert split_integer(7, 3, 3, coefficients=[2, 3]) == [(1, 12), (2, 23), (3, 40)]
    assert interpolate([(3, 40), (1, 12), (2, 23)]) == 7


def test_every_choice_of_k_shares_rebuilds_the_kek():
    kek = secrets.token_bytes(32)
    shares = split(kek, 5, 3)
    for chosen in itertools.combinations(shares, 3):
        assert combine([Share.decode(s.encode()) for s in chosen]) == kek


def test_a_kek_with_leading_zero_bytes_comes_back_whole():
    kek = b"\x00\x00" + secrets.token_bytes(30)
    assert combine(split(kek, 3, 2)[1:]) == kek


def test_fewer_than_k_shares_are_refused():
    shares = split(secrets.token_bytes(32), 5, 3)
    with pytest.raises(EscrowError, match="3 shares are needed, 2 given"):
        combine(shares[:2])


def test_a_mistyped_share_is_refused_by_its_check_digits():
    line = split(secrets.token_bytes(32), 3, 2)[0].encode()
    head, y, check = line.rsplit(":", 2)
    wrong = f"{head}:{y[:-1]}{'0' if y[-1] != '0' else '1'}:{check}"
    with pytest.raises(EscrowError, match="check digits"):
        Share.decode(wrong)


def test_a_forged_share_with_valid_check_digits_does_not_yield_a_wrong_kek():
    kek = secrets.token_bytes(32)
    good = split(kek, 3, 2)
    forged = Share(good[0].threshold, good[0].x, (good[0].y + 1), good[0].fingerprint, good[0].length)
    with pytest.raises(EscrowError, match="one of them is wrong"):
        combine([Share.decode(forged.encode()), good[1]])


def test_an_extra_wrong_share_is_named_not_ignored():
    kek = secrets.token_bytes(32)
    good = split(kek, 4, 2)
    bad = Share(2, good[3].x, good[3].y ^ 1, good[3].fingerprint, good[3].length)
    with pytest.raises(EscrowError, match="share 4 does not agree"):
        combine([good[0], good[1], bad])


def test_shares_of_two_different_splits_do_not_mix():
    a, b = split(secrets.token_bytes(32), 3, 2), split(secrets.token_bytes(32), 3, 2)
    with pytest.raises(EscrowError, match="different splits"):
        combine([a[0], b[1]])


def test_the_same_share_twice_is_not_two_shares():
    shares = split(secrets.token_bytes(32), 3, 2)
    with pytest.raises(EscrowError, match="given twice"):
        combine([shares[0], shares[0]])


@pytest.mark.parametrize(("n", "k"), [(3, 1), (2, 3), (5, 0)])
def test_a_threshold_outside_2_to_n_is_refused(n, k):
    with pytest.raises(EscrowError, match="threshold"):
        split(secrets.token_bytes(32), n, k)


def test_no_share_holds_the_kek_in_clear():
    kek = secrets.token_bytes(32)
    for share in split(kek, 5, 3):
        assert kek.hex() not in share.encode()

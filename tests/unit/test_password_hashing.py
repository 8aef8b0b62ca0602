"""The server hashes a typed password exactly as werkzeug hashed the stored one, so the database can compare.

Sign-in never reads a password hash (sql/auth.sql): ``candidate_hash`` makes ``method$salt$digest`` from the
account's method and salt, and ``auth_sign_in`` compares it with the stored string. These tests hold it equal
to werkzeug's own hashing, the real thing that wrote every stored hash.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.security import check_password_hash, generate_password_hash

from backoffice.services.auth import PASSWORD_METHOD, candidate_hash, hash_password


def method_and_salt(stored: str) -> str:
    return stored.rpartition("$")[0]


@pytest.mark.parametrize("method", [PASSWORD_METHOD, "scrypt", "pbkdf2:sha256:1000", "pbkdf2:sha512:2000"])
def test_the_candidate_for_the_right_password_is_the_stored_hash(method):
    stored = generate_password_hash("correct horse battery", method=method)
    assert candidate_hash(method_and_salt(stored), "correct horse battery") == stored
    assert candidate_hash(method_and_salt(stored), "correct horse batterY") != stored


def test_new_passwords_name_their_parameters_so_a_made_up_salt_looks_the_same():
    stored = hash_password("a brand new passphrase")
    assert stored.startswith(PASSWORD_METHOD + "$") and check_password_hash(stored, "a brand new passphrase")


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=80))
def test_any_typed_text_hashes_as_werkzeug_checks_it(password):
    stored = generate_password_hash(password, method="pbkdf2:sha256:50")
    assert candidate_hash(method_and_salt(stored), password) == stored
    assert check_password_hash(stored, password)


@pytest.mark.parametrize(
    "method_and_salt_text",
    [
        "md5$abc",  # a method werkzeug does not write
        "scrypt:1048577:8:1$abc",  # parameters no account here was hashed with (memory)
        "scrypt:x:8:1$abc",
        "pbkdf2:sha1:1000$abc",
        "pbkdf2:sha256:0$abc",
        "",
        "$",
    ],
)
def test_an_unknown_or_unreasonable_method_matches_nothing(method_and_salt_text):
    assert candidate_hash(method_and_salt_text, "whatever") == ""


def test_a_password_with_a_nul_byte_or_a_lone_surrogate_is_hashed_not_refused():
    for password in ("pass\x00word", "pass\udc80word"):
        assert candidate_hash(PASSWORD_METHOD + "$abcdefgh", password).startswith(PASSWORD_METHOD + "$abcdefgh$")

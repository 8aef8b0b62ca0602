"""TINs encrypted at rest (services/tin_cipher.py): AES-GCM under the server's key with the organization's id as
associated data; a wrong key, another organization or a flipped byte does not decrypt; a bad key is refused."""

from __future__ import annotations

import base64
import uuid

import pytest

from backoffice.config import Settings, tax_id_key_for
from backoffice.services.tin_cipher import TinKeyError, check_key, decrypt_tin, encrypt_tin

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


def test_a_tin_round_trips_and_its_ciphertext_holds_no_digit_run():
    stored = encrypt_tin(KEY, ORG, "123456789")
    assert stored[:1] == b"\x01" and len(stored) == 1 + 12 + 9 + 16
    assert b"123456789" not in stored
    assert decrypt_tin(KEY, ORG, stored) == "123456789"
    assert encrypt_tin(KEY, ORG, "123456789") != stored  # a fresh nonce every time


@pytest.mark.parametrize(
    "tamper",
    [
        lambda s: (base64.urlsafe_b64encode(bytes(range(1, 33))).decode(), ORG, s),
        lambda s: (KEY, uuid.UUID("00000000-0000-4000-8000-000000000002"), s),
        lambda s: (KEY, ORG, s[:-1] + bytes([s[-1] ^ 1])),
        lambda s: (KEY, ORG, b"\x02" + s[1:]),
    ],
    ids=["another key", "another organization", "a flipped byte", "an unknown version"],
)
def test_what_was_not_sealed_so_does_not_decrypt(tamper):
    with pytest.raises(TinKeyError):
        decrypt_tin(*tamper(encrypt_tin(KEY, ORG, "123456789")))


@pytest.mark.parametrize("key", ["", "short", "x" * 44, base64.urlsafe_b64encode(bytes(16)).decode()])
def test_a_key_that_is_not_32_bytes_of_base64_is_refused(key):
    with pytest.raises(TinKeyError, match="32 bytes"):
        check_key(key)


def test_without_tax_id_key_one_is_generated_once_into_the_data_dir(tmp_path):
    settings = Settings(
        data_dir=tmp_path, database_url=None, database_admin_url=None, secret_key=None, trust_proxy=False
    )
    first = tax_id_key_for(settings)
    check_key(first)
    assert tax_id_key_for(settings) == first and (tmp_path / "tax_id_key").read_text().strip() == first
    configured = Settings(
        data_dir=tmp_path,
        database_url=None,
        database_admin_url=None,
        secret_key=None,
        trust_proxy=False,
        tax_id_key=KEY,
    )
    assert tax_id_key_for(configured) == KEY

"""Contractors' taxpayer identification numbers, encrypted at rest (issue 18, item 5).

AES-256-GCM with a fresh 96-bit nonce per TIN and the organization's id as associated data: a ciphertext copied
into another organization's row does not decrypt. The key is the server's (TAX_ID_KEY, or generated into the data
directory: config.tax_id_key_for), never the database's, so the database and its backups hold ciphertext only.
Stored as version byte 1 || nonce || ciphertext-and-tag."""

from __future__ import annotations

import base64
import binascii
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"
_NONCE_BYTES = 12


class TinKeyError(ValueError):
    """The configured key is not a 32-byte key, or a stored TIN does not decrypt with it."""


def _aead(key: str) -> AESGCM:
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise TinKeyError("TAX_ID_KEY must be 32 bytes in urlsafe base64 (44 characters).")
    return AESGCM(raw)


def check_key(key: str) -> None:
    """TinKeyError unless ``key`` is a usable key."""
    _aead(key)


def encrypt_tin(key: str, org_id: uuid.UUID, digits: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    return _VERSION + nonce + _aead(key).encrypt(nonce, digits.encode("ascii"), org_id.bytes)


def decrypt_tin(key: str, org_id: uuid.UUID, stored: bytes) -> str:
    stored = bytes(stored)
    if stored[:1] != _VERSION:
        raise TinKeyError("A stored TIN is in a form this version does not read.")
    nonce, sealed = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
    try:
        return _aead(key).decrypt(nonce, sealed, org_id.bytes).decode("ascii")
    except InvalidTag:
        raise TinKeyError("A stored TIN does not decrypt with TAX_ID_KEY (was the key changed?).") from None

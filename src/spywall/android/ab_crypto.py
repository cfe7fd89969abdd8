"""Decryption of an encrypted Android backup (``adb backup`` with a password), from the
format Android's backup manager writes (AOSP ``BackupManagerService``, public):

After the four header lines (``ANDROID BACKUP``, version, compressed, ``AES-256``) come
five text lines: the user-key salt (hex), the master-key checksum salt (hex), the PBKDF2
round count, the user-key IV (hex) and the encrypted master-key blob (hex); then the
AES-256-CBC ciphertext of the (possibly deflated) tar stream, PKCS#7 padded.

- user key = PBKDF2-HMAC-SHA1(password, user salt, rounds, 32 bytes); it decrypts the
  blob (AES-256-CBC, user IV) into length-prefixed master IV, master key and checksum.
- The checksum is PBKDF2-HMAC-SHA1 of the master key with the checksum salt. Java hands
  the key to PBKDF2 as characters: from format version 2 on, each byte is a *signed*
  Java char, encoded in UTF-8 (so a byte 0x80..0xFF becomes U+FF80..U+FFFF); version 1
  used the bytes. A mismatch means a wrong password.
Every length and the round count are checked before use (a hostile header must not buy
hours of PBKDF2).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from spywall.errors import FormatError, LimitExceeded

MAX_ROUNDS = 1_000_000
MAX_LINE = 4096


class WrongPassword(FormatError):
    code = "input"


def _hex(line: bytes, what: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(line.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"encrypted backup: {what} is not hex") from exc
    if size is not None and len(raw) != size:
        raise FormatError(f"encrypted backup: {what} is {len(raw)} bytes, not {size}")
    return raw


def java_key_chars(key: bytes, version: int) -> bytes:
    """The bytes PBKDF2 saw for the master key (see the module docstring)."""
    if version < 2:
        return key
    return "".join(chr(b if b < 0x80 else 0xFF00 | b) for b in key).encode("utf-8")


def _aes_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    if len(data) % 16:
        raise FormatError("encrypted backup: ciphertext is not whole AES blocks")
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _take(blob: bytes, at: int, what: str) -> tuple[bytes, int]:
    if at >= len(blob):
        raise WrongPassword(f"wrong backup password (no {what} in the key blob)")
    n = blob[at]
    if at + 1 + n > len(blob):
        raise WrongPassword(f"wrong backup password ({what} runs past the key blob)")
    return blob[at + 1:at + 1 + n], at + 1 + n


def decrypt(payload: bytes, password: str, version: int) -> bytes:
    """The plaintext (still deflated when the header says compressed) of the part after
    the four header lines. ``WrongPassword`` / ``FormatError`` / ``LimitExceeded``."""
    parts = payload.split(b"\n", 5)
    if len(parts) < 6 or any(len(p) > MAX_LINE for p in parts[:5]):
        raise FormatError("encrypted backup: truncated key header")
    user_salt = _hex(parts[0], "user salt")
    check_salt = _hex(parts[1], "checksum salt")
    if not parts[2].strip().isdigit():
        raise FormatError("encrypted backup: round count is not a number")
    rounds = int(parts[2])
    if not 1 <= rounds <= MAX_ROUNDS:
        raise LimitExceeded(f"encrypted backup: {rounds} PBKDF2 rounds (cap {MAX_ROUNDS})")
    user_iv = _hex(parts[3], "user IV", 16)
    blob = _hex(parts[4], "master key blob")
    user_key = hashlib.pbkdf2_hmac("sha1", password.encode("utf-8"), user_salt, rounds, 32)
    plain = _aes_cbc(user_key, user_iv, blob)
    iv, at = _take(plain, 0, "IV")
    key, at = _take(plain, at, "key")
    check, _ = _take(plain, at, "checksum")
    if len(iv) != 16 or len(key) != 32:
        raise WrongPassword("wrong backup password (the key blob does not decrypt)")
    want = hashlib.pbkdf2_hmac("sha1", java_key_chars(key, version), check_salt, rounds, 32)
    if want != check:
        raise WrongPassword("wrong backup password (master key checksum mismatch)")
    data = _aes_cbc(key, iv, parts[5])
    unpad = padding.PKCS7(128).unpadder()
    try:
        return unpad.update(data) + unpad.finalize()
    except ValueError as exc:
        raise FormatError("encrypted backup: bad padding after decryption") from exc


def encrypt(plain: bytes, password: str, version: int, *, rounds: int = 10_000,
            seed: bytes = b"spywall") -> bytes:
    """The inverse, for generating samples: the five key lines and the ciphertext (what
    follows the four header lines). Deterministic from ``seed``."""
    def rnd(label: str, n: int) -> bytes:
        return hashlib.shake_256(seed + label.encode()).digest(n)

    user_salt, check_salt, user_iv = rnd("salt", 64), rnd("csalt", 64), rnd("uiv", 16)
    key, iv = rnd("mk", 32), rnd("miv", 16)
    user_key = hashlib.pbkdf2_hmac("sha1", password.encode("utf-8"), user_salt, rounds, 32)
    check = hashlib.pbkdf2_hmac("sha1", java_key_chars(key, version), check_salt, rounds, 32)
    blob = bytes([16]) + iv + bytes([32]) + key + bytes([32]) + check

    def cbc(k: bytes, v: bytes, data: bytes) -> bytes:
        pad = padding.PKCS7(128).padder()
        padded = pad.update(data) + pad.finalize()
        enc = Cipher(algorithms.AES(k), modes.CBC(v)).encryptor()
        return enc.update(padded) + enc.finalize()

    head = b"\n".join([user_salt.hex().upper().encode(), check_salt.hex().upper().encode(),
                       str(rounds).encode(), user_iv.hex().upper().encode(),
                       cbc(user_key, user_iv, blob).hex().upper().encode()])
    return head + b"\n" + cbc(key, iv, plain)

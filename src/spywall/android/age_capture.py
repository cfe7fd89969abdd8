"""androidqf captures encrypted with age (``<UUID>.zip.age``).

androidqf encrypts the ZIP stream of an acquisition to every age recipient listed in its
``key.txt`` (X25519 public keys); the analyst decrypts with the matching identity
(``AGE-SECRET-KEY-1...`` lines of an identity file). age files may also be encrypted with
a passphrase (an ``scrypt`` stanza). The file is decrypted in memory with ``pyrage``
(bindings to rage, an implementation of the age format) and opened as a ZIP capture;
nothing is written to disk.

Bounded: the file is within the capture size cap before it is read; an ``scrypt`` work
factor above ``MAX_SCRYPT_LOG2N`` is refused before any work is done (a hostile header
could ask for hours of key derivation).
"""

from __future__ import annotations

import re

from spywall.errors import InputError, LimitExceeded

MAGIC = b"age-encryption.org/v1\n"
MAX_SCRYPT_LOG2N = 22  # age's own default is 18
MAX_IDENTITIES = 1000
_SCRYPT = re.compile(rb"^-> scrypt \S+ (\d{1,3})$", re.M)
_IDENTITY = re.compile(r"^AGE-SECRET-KEY-1[0-9A-Z]{20,100}$")


def is_age(head: bytes) -> bool:
    return head.startswith(MAGIC)


def identities(text: str) -> list[str]:
    """The X25519 identities of an age identity file (comments and blanks skipped)."""
    out = [line.strip() for line in text.splitlines()
           if _IDENTITY.fullmatch(line.strip())][:MAX_IDENTITIES]
    if not out:
        raise InputError("the age key file holds no AGE-SECRET-KEY-1... identity")
    return out


def decrypt(data: bytes, keys: list[str], passphrase: str | None) -> bytes:
    """The plaintext of an age file: with ``keys`` (X25519 identities) or, for a
    passphrase-encrypted file, ``passphrase``. ``InputError`` when neither fits."""
    import pyrage  # (only for an encrypted capture)

    header = data[:4096].split(b"\n---", 1)[0]
    m = _SCRYPT.search(header)
    try:
        if m is not None:
            if int(m.group(1)) > MAX_SCRYPT_LOG2N:
                raise LimitExceeded(f"age scrypt work factor 2^{int(m.group(1))} is over the "
                                    f"cap of 2^{MAX_SCRYPT_LOG2N}")
            if passphrase is None:
                raise InputError("the capture is encrypted with a passphrase: give it with "
                                 "--password")
            return bytes(pyrage.passphrase.decrypt(data, passphrase))
        if not keys:
            raise InputError("the capture is age-encrypted (androidqf key.txt): give the "
                             "matching identity file with --age-key")
        ids = [pyrage.x25519.Identity.from_str(k) for k in keys]
        return bytes(pyrage.decrypt(data, ids))
    except pyrage.DecryptError as exc:
        raise InputError(f"cannot decrypt the capture: {exc} (wrong key or password?)") from exc
    except pyrage.IdentityError as exc:
        raise InputError(f"bad age identity: {exc}") from exc

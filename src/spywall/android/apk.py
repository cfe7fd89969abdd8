"""Signing certificates of an APK, for ``app:cert.sha256`` indicators.

- APK Signature Scheme v2/v3 (Android 7+): the *APK Signing Block* sits just before the
  zip central directory: ``u64 size``, ID-value pairs (``u64 length, u32 id, value``),
  ``u64 size``, magic ``APK Sig Block 42``. The v2 (0x7109871a), v3 (0xf05368c0) and v3.1
  (0x1b93ad61) values hold length-prefixed (u32) signers whose signed data lists the
  signer's X.509 certificates (DER) second, after the digests.
- v1 (JAR signing): ``META-INF/*.RSA|DSA|EC`` PKCS#7 blocks, read with ``cryptography``.

The indicator value is the SHA-256 of the certificate's DER encoding (what ``apksigner``
and androidqf print). Every length is checked against what remains and a cap.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from spywall.errors import FormatError, LimitExceeded
from spywall.formats.reader import Reader, check_count
from spywall.formats.zipfmt import ZIP_ERRORS

MAGIC = b"APK Sig Block 42"
SCHEME_IDS = frozenset({0x7109871A, 0xF05368C0, 0x1B93AD61})
MAX_PAIRS = 256
MAX_SIGNERS = 16
MAX_CERTS = 16
MAX_CERT = 64 * 1024
MAX_V1_BLOCK = 1024 * 1024
_V1_SUFFIXES = (".RSA", ".DSA", ".EC")


def _central_directory(data: bytes) -> int | None:
    pos = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if pos < 0 or pos + 22 > len(data):
        return None
    return int.from_bytes(data[pos + 16 : pos + 20], "little")


def signing_block(data: bytes) -> dict[int, bytes]:
    """ID -> value of the APK Signing Block ({} when there is none)."""
    cd = _central_directory(data)
    if cd is None or cd < 32 or cd > len(data) or data[cd - 16 : cd] != MAGIC:
        return {}
    size = int.from_bytes(data[cd - 24 : cd - 16], "little")
    start = cd - size - 8
    if size < 24 or start < 0:
        raise FormatError("APK Signing Block size out of range")
    r = Reader(data, start, cd - 24)
    if r.u64le() != size:
        raise FormatError("APK Signing Block sizes differ")
    out: dict[int, bytes] = {}
    while r.remaining:
        if len(out) >= MAX_PAIRS:
            raise LimitExceeded(f"more than {MAX_PAIRS} signing block entries")
        length = r.u64le()
        if length < 4 or length > r.remaining:
            raise FormatError("bad APK Signing Block entry length")
        pair = r.sub(length)
        ident = pair.u32le()
        out[ident] = pair.read(pair.remaining)
    return out


def _prefixed(r: Reader) -> Reader:
    return r.sub(r.u32le())


def _scheme_certs(value: bytes) -> list[bytes]:
    signers = _prefixed(Reader(value))
    certs: list[bytes] = []
    n = 0
    while signers.remaining:
        n += 1
        check_count(n, MAX_SIGNERS, "signer")
        signer = _prefixed(signers)
        signed = _prefixed(signer)
        _prefixed(signed)  # digests
        seq = _prefixed(signed)
        while seq.remaining:
            length = seq.u32le()
            if length > MAX_CERT:
                raise LimitExceeded(f"certificate of {length} bytes over the cap")
            certs.append(seq.read(length))
            check_count(len(certs), MAX_CERTS, "certificate")
    return certs


def _v1_certs(data: bytes) -> list[bytes]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist()[:20_000]
                 if i.filename.upper().startswith("META-INF/")
                 and i.filename.upper().endswith(_V1_SUFFIXES) and i.file_size <= MAX_V1_BLOCK]
        blocks = [zf.read(i) for i in infos[:MAX_SIGNERS]]
    except ZIP_ERRORS as exc:
        raise FormatError(f"bad APK zip: {exc}") from exc
    certs: list[bytes] = []
    for block in blocks:
        try:
            loaded = pkcs7.load_der_pkcs7_certificates(block)
        except ValueError as exc:  # cryptography's documented error for bad PKCS#7
            raise FormatError(f"bad v1 signature block: {exc}") from exc
        certs.extend(c.public_bytes(Encoding.DER) for c in loaded[:MAX_CERTS])
    return certs


def certificate_hashes(data: bytes) -> list[str]:
    """SHA-256 of every signing certificate (v2/v3 block, else v1), deduplicated."""
    block = signing_block(data)
    certs = [c for ident, v in block.items() if ident in SCHEME_IDS for c in _scheme_certs(v)]
    if not certs:
        certs = _v1_certs(data)
    return list(dict.fromkeys(hashlib.sha256(c).hexdigest() for c in certs))

"""Android backups (``adb backup`` / androidqf ``backup.ab``): the SMS and MMS the
telephony provider backs up, for the links in them.

Format: four text lines (``ANDROID BACKUP``, version, compressed 0/1, encryption
``none`` or ``AES-256``), then a tar archive, zlib-compressed when the flag says so.
Messages are under ``apps/com.android.providers.telephony/d_f/NNNNNN_sms_backup`` (and
``_mms_backup``): each a zlib-compressed JSON list of messages with ``address``,
``body``, ``date`` (unix milliseconds). Encrypted backups are reported, not opened.
Everything is decompressed in memory within the capture's ``Budget``.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import zlib

import msgspec

from spywall.errors import FormatError, LimitExceeded
from spywall.limits import Budget

MAGIC = b"ANDROID BACKUP\n"
MAX_MEMBERS = 100_000
MAX_MESSAGES = 1_000_000
_SMS_MEMBER = re.compile(r"apps/com\.android\.providers\.telephony/d_f/\d{1,9}_(sms|mms)_backup")
# What tarfile / zlib / json are known to raise on corrupt input.
_TAR_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError,
               zlib.error, RecursionError)


class EncryptedBackup(FormatError):
    code = "unsupported"


class Message(msgspec.Struct, frozen=True):
    address: str | None
    body: str
    date: int | None
    kind: str  # sms | mms


def _inflate(data: bytes, budget: Budget) -> bytes:
    cap = budget.stream_cap()
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, cap + 1)
    except zlib.error as exc:
        raise FormatError(f"bad zlib stream: {exc}") from exc
    if len(out) > cap or d.unconsumed_tail:
        raise LimitExceeded(f"decompresses past {cap} bytes")
    budget.charge_decompressed(len(out), len(data))
    return out


def _header(data: bytes) -> tuple[bool, int]:
    """(compressed, offset of the payload)."""
    if not data.startswith(MAGIC):
        raise FormatError("not an Android backup (no 'ANDROID BACKUP' header)")
    lines = data[:256].split(b"\n", 4)
    if len(lines) < 5:
        raise FormatError("truncated Android backup header")
    _, version, compressed, encryption, _ = lines
    if encryption.strip() != b"none":
        raise EncryptedBackup(f"encrypted Android backup ({encryption[:32]!r})")
    if not version.strip().isdigit() or compressed.strip() not in (b"0", b"1"):
        raise FormatError("bad Android backup header")
    return compressed.strip() == b"1", sum(len(x) + 1 for x in lines[:4])


def _messages(blob: bytes, kind: str, budget: Budget) -> list[Message]:
    raw = _inflate(blob, budget) if blob[:1] == b"\x78" else blob
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{kind} backup is not JSON: {str(exc)[:100]}") from exc
    if not isinstance(doc, list):
        raise FormatError(f"{kind} backup is not a JSON list")
    out: list[Message] = []
    for m in doc[:MAX_MESSAGES]:
        if not isinstance(m, dict):
            continue
        body = m.get("body")
        if kind == "mms" and not isinstance(body, str):
            parts = m.get("mms_body") or m.get("parts")
            body = " ".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)) \
                if isinstance(parts, list) else None
        if not isinstance(body, str):
            continue
        date = m.get("date")
        when = int(date) if isinstance(date, str | int) and str(date).isdigit() else None
        addr = m.get("address")
        out.append(Message(addr if isinstance(addr, str) else None, body, when, kind))
    budget.charge_elements(len(out))
    return out


def sms(data: bytes, budget: Budget) -> list[Message]:
    """Messages in an unencrypted backup. ``EncryptedBackup`` / ``FormatError`` /
    ``LimitExceeded`` otherwise."""
    compressed, offset = _header(data)
    payload = _inflate(data[offset:], budget) if compressed else data[offset:]
    out: list[Message] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
            for n, member in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise LimitExceeded(f"more than {MAX_MEMBERS} members in the backup")
                m = _SMS_MEMBER.fullmatch(member.name)
                if m is None or not member.isfile():
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    out.extend(_messages(fh.read(budget.stream_cap() + 1), m.group(1), budget))
    except _TAR_ERRORS as exc:
        raise FormatError(f"bad backup archive: {str(exc)[:200]}") from exc
    return out


_URL = re.compile(r"(?i)\b(?:https?://[^\s<>\"'()]{1,2048}|www\.[^\s<>\"'()]{1,2048}|"
                  r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.){1,10}[a-z]{2,24}"
                  r"(?=[/:\s]|$)[^\s<>\"'()]{0,2048})")


def urls(text: str, limit: int = 100) -> list[str]:
    """Links and bare host names in a message body (at most ``limit``)."""
    return [m.group(0).rstrip(".,;!?") for m, _ in zip(_URL.finditer(text), range(limit),
                                                        strict=False)]

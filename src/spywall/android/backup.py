"""Android backups (``adb backup`` / androidqf ``backup.ab``): the SMS and MMS the
telephony provider backs up, for the links in them.

Format: four text lines (``ANDROID BACKUP``, version, compressed 0/1, encryption
``none`` or ``AES-256``), then a tar archive, zlib-compressed when the flag says so.
Messages are under ``apps/com.android.providers.telephony/d_f/NNNNNN_sms_backup`` (and
``_mms_backup``): each a zlib-compressed JSON list of messages with ``address``,
``body``, ``date`` (unix milliseconds); an MMS has its text as ``mms_body`` (a string)
or, in other writers, as a list of parts with ``text``. Encrypted backups (``AES-256``)
are decrypted with the password (``ab_crypto``); without one they are reported.
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
    # the provider's other text and number fields (``date_sent``, ``type``, ``read``,
    # ``status``, ``msg_box``...), as MVT keeps them: at most MAX_FIELDS, texts capped
    fields: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)

    @property
    def direction(self) -> str:
        """``sent`` or ``received``: from the box (SMS ``type``, MMS ``msg_box``: 1 inbox,
        2 sent); otherwise MVT's rule (a ``date_sent`` is a sent message)."""
        box = str(self.fields.get("type", self.fields.get("msg_box", "")))
        if box in ("1", "2"):
            return "sent" if box == "2" else "received"
        sent = str(self.fields.get("date_sent", "0"))
        return "sent" if sent.isdigit() and int(sent) else "received"


MAX_FIELDS = 40
MAX_FIELD_TEXT = 512


def _scalars(m: dict[str, object]) -> dict[str, str | int | float | bool | None]:
    out: dict[str, str | int | float | bool | None] = {}
    for k, v in m.items():
        if len(out) >= MAX_FIELDS:
            break
        if k in ("body", "mms_body", "address") or not isinstance(k, str):
            continue
        if isinstance(v, str):
            out[k] = v[:MAX_FIELD_TEXT]
        elif v is None or isinstance(v, int | float | bool):
            out[k] = v
    return out


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


def _header(data: bytes, password: str | None) -> tuple[bool, int, int, bool]:
    """(compressed, offset of the payload, format version, encrypted)."""
    if not data.startswith(MAGIC):
        raise FormatError("not an Android backup (no 'ANDROID BACKUP' header)")
    lines = data[:256].split(b"\n", 4)
    if len(lines) < 5:
        raise FormatError("truncated Android backup header")
    _, version, compressed, encryption, _ = lines
    if not version.strip().isdigit() or compressed.strip() not in (b"0", b"1"):
        raise FormatError("bad Android backup header")
    encrypted = encryption.strip() != b"none"
    if encrypted and encryption.strip() != b"AES-256":
        raise EncryptedBackup(f"Android backup encrypted with {encryption[:32]!r}, which "
                              "spywall cannot decrypt")
    if encrypted and password is None:
        raise EncryptedBackup("encrypted Android backup: give its password (--password or "
                              "SPYWALL_BACKUP_PASSWORD)")
    return (compressed.strip() == b"1", sum(len(x) + 1 for x in lines[:4]),
            int(version.strip()[:6]), encrypted)


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
            body = _mms_text(m.get("mms_body") or m.get("parts"))
        if not isinstance(body, str):
            continue
        date = m.get("date")
        when = int(date) if isinstance(date, str | int) and str(date).isdigit() else None
        addr = m.get("address")
        if addr is None and isinstance(m.get("mms_addresses"), list):  # an MMS: the sender
            addr = next((a.get("address") for a in m["mms_addresses"][:100]
                         if isinstance(a, dict) and a.get("type") in (137, "137")), None)
        out.append(Message(addr if isinstance(addr, str) else None, body, when, kind,
                           _scalars(m)))
    budget.charge_elements(len(out))
    return out


def _mms_text(body: object) -> str | None:
    """An MMS text: ``mms_body`` as the telephony provider's backup writes it (a string),
    or a list of parts each with ``text``."""
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return " ".join(str(p.get("text", "")) for p in body[:1000] if isinstance(p, dict))
    return None


def sms(data: bytes, budget: Budget, password: str | None = None) -> list[Message]:
    """Messages in a backup (decrypted with ``password`` when encrypted).
    ``EncryptedBackup`` (no password, or a cipher spywall does not know),
    ``ab_crypto.WrongPassword``, ``FormatError`` or ``LimitExceeded`` otherwise."""
    compressed, offset, version, encrypted = _header(data, password)
    payload = data[offset:]
    if not encrypted and not payload.strip(b"\0"):  # a header alone: nothing in it
        return []
    if encrypted and password is not None:
        from spywall.android import ab_crypto  # (cryptography only for encrypted ones)

        payload = ab_crypto.decrypt(payload, password, version)
        budget.check_time()
    payload = _inflate(payload, budget) if compressed else payload
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

"""An iTunes / Finder backup folder, opened without changing it.

- The folder must hold Manifest.db (``InputError`` otherwise); Info.plist, Status.plist
  and Manifest.plist are read when present (Manifest.plist is required only to decrypt).
- A file that Manifest.db lists but the folder does not hold is ``ArtifactMissing`` (no
  data for that module), not a malformed backup.
- ``Manifest.db`` rows are loaded once; a file is found by (domain, relativePath) and
  stored at ``<fileID[:2]>/<fileID>``. A fileID that is not 40 lowercase hex digits, or a
  stored file that resolves (symlinks included) outside the backup folder, is rejected.
- Encrypted backups (Manifest.plist ``IsEncrypted``) are opened with ``iphone_backup_decrypt``:
  the Manifest.db and each file a module asks for are decrypted into a private temporary
  folder, never beside the evidence. Wrong or missing passwords are ``InputError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sqlite3
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from spywall.device.base import ArtifactMissing, load_plist
from spywall.device.sqlite import open_evidence, require
from spywall.errors import FormatError, InputError, LimitExceeded
from spywall.ios.mbfile import MBFile, decode
from spywall.safeopen import NotRegularFile, open_regular

SEP = "!/"
MAX_ENTRIES = 3_000_000
_FILE_ID = re.compile(r"[0-9a-f]{40}")
_WRAPPED_KEY_LEN = 4 + 0x28
# iphone_backup_decrypt raises these on wrong passwords and damaged backups (its own
# errors subclass ValueError / FileNotFoundError; it wraps sqlite errors in RuntimeError).
_DECRYPT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, OSError, RuntimeError, KeyError, IndexError, TypeError, struct.error,
    sqlite3.Error,
)


class Entry(msgspec.Struct, frozen=True):
    """One ``Files`` row of Manifest.db (or one path of a filesystem dump: ``disk`` is its
    path inside the dump, ``file_id`` empty)."""

    file_id: str
    domain: str
    relative_path: str
    flags: int
    blob: bytes | None
    disk: str = ""

    @property
    def is_file(self) -> bool:
        return self.flags == 1

    def meta(self) -> MBFile | None:
        return decode(self.blob)


def _plist(path: Path) -> dict[str, object]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    try:
        obj = load_plist(data)
    except (FormatError, LimitExceeded) as exc:
        raise InputError(f"{path.name} is not a valid plist: {exc}") from exc
    if not isinstance(obj, dict):
        raise InputError(f"{path.name} is not a dictionary plist")
    return {str(k): v for k, v in obj.items()}


def _open(path: Path) -> BinaryIO:
    """An evidence file, opened only if it is a regular file (a FIFO planted in the
    evidence would block the open forever): ``FormatError`` otherwise."""
    try:
        return open_regular(path)
    except NotRegularFile as exc:
        raise FormatError(str(exc)) from exc


def read_capped(path: Path, limit: int, name: str) -> bytes:
    """A file's bytes; ``LimitExceeded`` (naming ``name``) when it is over ``limit``."""
    with _open(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise LimitExceeded(f"{name}: {size} bytes over the cap of {limit}")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise LimitExceeded(f"{name}: over the cap of {limit} bytes")
    return data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with _open(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


TOP_FILES = ("Info.plist", "Manifest.plist", "Status.plist", "Manifest.db")


class Backup(msgspec.Struct):
    root: Path
    info: dict[str, object]
    manifest: dict[str, object]
    status: dict[str, object]
    manifest_db: Path
    tmp: Path
    decryptor: object | None = None
    entries: list[Entry] = msgspec.field(default_factory=list)
    by_path: dict[tuple[str, str], Entry] = msgspec.field(default_factory=dict)
    inputs: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def encrypted(self) -> bool:
        return self.decryptor is not None

    @property
    def fork_safe(self) -> bool:
        """Modules may run in forked workers: every access opens the backup's files
        afresh. Not when encrypted: the decryptor holds its own database connection."""
        return self.decryptor is None

    def get(self, domain: str, relative_path: str) -> Entry | None:
        return self.by_path.get((domain, relative_path))

    def with_suffix(self, suffix: str) -> list[Entry]:
        return [e for e in self.entries if e.is_file and e.relative_path.endswith(suffix)]

    def display(self, entry: Entry) -> str:
        return f"{self.root}{SEP}{entry.domain}/{entry.relative_path}"

    def stored_path(self, entry: Entry) -> Path:
        """Where the (possibly encrypted) file is in the backup; contained or FormatError."""
        if not _FILE_ID.fullmatch(entry.file_id):
            raise FormatError(f"fileID {entry.file_id[:60]!r} is not 40 hex digits")
        p = self.root / entry.file_id[:2] / entry.file_id
        try:
            real = p.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ArtifactMissing(f"{entry.domain}/{entry.relative_path} is listed in "
                                  f"Manifest.db but its file {entry.file_id} is not in "
                                  "the backup") from exc
        if not real.is_relative_to(self.root.resolve()) or not real.is_file():
            raise FormatError(f"{entry.file_id}: resolves outside the backup folder")
        return real

    def size(self, entry: Entry) -> int:
        """Bytes of the entry's stored file (0 when it cannot be found): a cost estimate,
        nothing read."""
        try:
            return self.stored_path(entry).stat().st_size
        except (OSError, FormatError, ArtifactMissing):
            return 0

    def local_path(self, entry: Entry) -> Path:
        """A readable plaintext copy of the entry's file (the evidence itself if unencrypted)."""
        stored = self.stored_path(entry)
        if self.decryptor is None:
            out = stored
        else:
            out = self.tmp / "files" / entry.file_id
            if not out.exists():
                self._decrypt(entry, out)
        self.inputs.setdefault(self.display(entry), sha256_file(stored))
        return out

    def _decrypt(self, entry: Entry, out: Path) -> None:
        meta = entry.meta()
        if meta is None or meta.key_length != _WRAPPED_KEY_LEN:
            raise FormatError(f"{entry.relative_path}: no usable encryption key in Manifest.db")
        out.parent.mkdir(exist_ok=True)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.decryptor.extract_file(  # type: ignore[attr-defined]
                    relative_path=entry.relative_path, domain_like=entry.domain,
                    output_filename=str(out))
        except _DECRYPT_ERRORS as exc:
            raise FormatError(f"cannot decrypt {entry.relative_path}: "
                              f"{type(exc).__name__}: {exc}") from exc

    def read(self, entry: Entry, limit: int) -> bytes:
        return read_capped(self.local_path(entry), limit, entry.relative_path)

    def wal(self, entry: Entry) -> Path | None:
        log = self.get(entry.domain, entry.relative_path + "-wal")
        if log is None or not log.is_file:
            return None
        try:
            return self.local_path(log)
        except ArtifactMissing:  # listed, not stored: the database as it is
            return None


def _load_entries(backup: Backup) -> None:
    with open_evidence(backup.manifest_db) as conn:
        require(conn, "Files", ("fileID", "domain", "relativePath", "flags", "file"))
        rows = conn.execute("SELECT fileID, domain, relativePath, flags, file FROM Files "
                            "LIMIT ?", (MAX_ENTRIES + 1,))
        for fid, domain, rel, flags, blob in rows:
            if len(backup.entries) >= MAX_ENTRIES:
                raise LimitExceeded(f"Manifest.db lists more than {MAX_ENTRIES} files")
            e = Entry(str(fid), str(domain or ""), str(rel or ""),
                      flags if isinstance(flags, int) else 0,
                      blob if isinstance(blob, bytes) else None)
            backup.entries.append(e)
            backup.by_path.setdefault((e.domain, e.relative_path), e)


def _unlock(root: Path, password: str | None, tmp: Path) -> tuple[object, Path]:
    if password is None:
        raise InputError("the backup is encrypted: give --password, set "
                         "SPYWALL_BACKUP_PASSWORD, or run on a terminal to be asked")
    from iphone_backup_decrypt import EncryptedBackup

    out = tmp / "Manifest.db"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            dec = EncryptedBackup(backup_directory=str(root), passphrase=password)
            dec.test_decryption()
            dec.save_manifest_file(str(out))
    except _DECRYPT_ERRORS as exc:
        # 0.11 raises IncorrectPassphraseError (a ValueError), 0.10 a plain ValueError;
        # both say "incorrect passphrase".
        if "passphrase" in str(exc).lower():
            raise InputError("wrong backup password (the key bag could not be unlocked)") \
                from exc
        raise InputError(f"cannot decrypt the backup: {type(exc).__name__}: {exc}") from exc
    return dec, out


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _noop() -> None:
    return None


def _close(decryptor: object) -> None:
    """Delete the library's decrypted Manifest.db now, and only once (its ``__del__``
    would try again and print to standard output)."""
    with contextlib.suppress(*_DECRYPT_ERRORS), contextlib.redirect_stdout(io.StringIO()):
        decryptor._cleanup()  # type: ignore[attr-defined]
    decryptor._cleanup = _noop  # type: ignore[attr-defined]


@contextlib.contextmanager
def open_backup(path: str | Path, password: str | None = None) -> Iterator[Backup]:
    """Open a backup folder; decrypted material lives in a temporary folder until exit."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (give the backup folder, named by the UDID)")
    # Evidence boundary: the backup's own files are read only when they are regular files
    # inside it; a symbolic link (say, Manifest.db -> a database elsewhere) is refused.
    linked = [n for n in TOP_FILES if (root / n).is_symlink()]
    if linked:
        raise InputError(f"{root}: {', '.join(linked)} is a symbolic link; a backup's own "
                         "files are never followed out of it")
    if not (root / "Manifest.db").is_file():
        raise InputError(f"{root}: not an iOS backup (no Manifest.db)")
    # Manifest.plist is optional (copies of backups often lose it): needed only for the
    # key bag of an encrypted backup.
    has_plist = (root / "Manifest.plist").is_file()
    manifest = _plist(root / "Manifest.plist") if has_plist else {}
    info = _plist(root / "Info.plist") if (root / "Info.plist").is_file() else {}
    status = _plist(root / "Status.plist") if (root / "Status.plist").is_file() else {}
    with tempfile.TemporaryDirectory(prefix="spywall-ios-") as tmp_name:
        tmp = Path(tmp_name)
        decryptor: object | None = None
        db = root / "Manifest.db"
        if not has_plist and not _is_sqlite(db):
            raise InputError(f"{root}: Manifest.db is not a plain SQLite database (an "
                             "encrypted backup?) and Manifest.plist, which holds the key "
                             "bag needed to decrypt it, is missing")
        if manifest.get("IsEncrypted") is True and not _is_sqlite(db):
            # (a backup decrypted by another tool keeps IsEncrypted but a plain Manifest.db)
            decryptor, db = _unlock(root, password, tmp)
        backup = Backup(root, info, manifest, status, db, tmp, decryptor)
        for name in TOP_FILES:
            if (root / name).is_file():
                backup.inputs[str(root / name)] = sha256_file(root / name)
        try:
            _load_entries(backup)
        except sqlite3.DatabaseError as exc:
            hint = " (is it encrypted? Manifest.plist says it is not)" if not decryptor else ""
            raise InputError(f"Manifest.db cannot be read{hint}: {exc}") from exc
        try:
            yield backup
        finally:
            if decryptor is not None:
                _close(decryptor)

"""The evidence log: the latest signed checkpoint and who signed it (the log and its
witnesses), a search of entries, a bundle exported for a party (a zip of the folder
``spywall evidence export`` writes), and an uploaded bundle verified by the independent
verifier (``spywall.evidence.verify``)."""

from __future__ import annotations

import base64
import io
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from spywall.evidence import bundle
from spywall.evidence.keys import KeyFileError, load_signer
from spywall.evidence.tables import log_checkpoints, log_entries, log_head
from spywall.evidence.verify import verify_bundle
from spywall.platform.web.core import (
    MAX_FIELD,
    SessionDep,
    audit,
    form,
    platform_of,
    render,
    settings_of,
    text,
)

router = APIRouter()
MAX_HITS = 100
MAX_ZIP_FILES = 32
MAX_UNZIPPED = 256 << 20
MAX_UPLOAD = 64 << 20
STATUS = {0: "intact", 1: "changed", 2: "not a bundle"}


def signatures(note: str) -> list[dict[str, str]]:
    """The signature lines of a signed note: signer name and key hash (hex)."""
    out = []
    _, _, sigs = note.partition("\n\n")
    for line in sigs.splitlines()[:100]:
        if not line.startswith("\u2014 "):
            continue
        name, _, b64 = line[2:].rpartition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raw = b""
        out.append({"name": name, "key_hash": raw[:4].hex()})
    return out


def _search(conn: sa.Connection, query: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    le = log_entries
    cond = []
    if query["party"]:
        cond.append(le.c.party == query["party"])
    if query["kind"]:
        cond.append(le.c.kind == query["kind"])
    if query["index"].isdigit() and len(query["index"]) < 19:
        cond.append(le.c.idx == int(query["index"]))
    hits = [{"index": r.idx, "kind": r.kind, "ts": r.ts, "party": r.party}
            for r in conn.execute(sa.select(le.c.idx, le.c.kind, le.c.ts, le.c.party)
                                  .where(*cond).order_by(le.c.idx.desc()).limit(MAX_HITS))]
    body = ""
    if query["index"].isdigit() and len(query["index"]) < 19:
        raw = conn.execute(sa.select(le.c.body).where(le.c.idx == int(query["index"]))
                           ).scalar()
        if raw is not None:
            body = json.dumps(json.loads(bytes(raw)), indent=2, ensure_ascii=False)
    return hits, body


@router.get("/ui/evidence")
def evidence_page(request: Request, session: SessionDep) -> Response:
    q = {k: request.query_params.get(k, "")[:MAX_FIELD] for k in ("party", "kind", "index")}
    with platform_of(request).engine.connect() as conn:
        head = conn.execute(sa.select(log_head)).first()
        latest = conn.execute(sa.select(log_checkpoints).order_by(
            log_checkpoints.c.size.desc()).limit(1)).first()
        kinds = sorted(conn.execute(sa.select(log_entries.c.kind).distinct()).scalars())
        parties = sorted(p for p in conn.execute(
            sa.select(log_entries.c.party).distinct()).scalars() if p)
        hits, body = _search(conn, q) if any(q.values()) else ([], "")
    audit(request, session, "ui-view-evidence", {k: v for k, v in q.items() if v})
    checkpoint = None
    if latest is not None:
        sigs = signatures(latest.note)
        checkpoint = {"size": latest.size, "created": latest.created, "note": latest.note,
                      "log": sigs[:1], "witnesses": sigs[1:]}
    return render(request, "evidence.html", session, head=head, checkpoint=checkpoint,
                  kinds=kinds, parties=parties, query=q, hits=hits, body=body,
                  verified=None)


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.iterdir()):
            z.write(path, f"bundle/{path.name}")
    return buf.getvalue()


@router.post("/ui/evidence/export")
async def export(request: Request, session: SessionDep) -> Response:
    data = await form(request, session)
    party = text(data, "party", 128, required=False) or None
    try:
        signer = load_signer(settings_of(request).log_key)
    except KeyFileError as exc:
        raise HTTPException(503, f"the server has no log signing key: {exc}") from None
    with tempfile.TemporaryDirectory(prefix="spywall-ui-export-") as tmp:
        try:
            done = bundle.export(platform_of(request).engine, Path(tmp) / "b", signer,
                                 party=party)
        except bundle.ExportError as exc:
            raise HTTPException(422, str(exc)) from None
        archive = _zip_folder(done.folder)
    audit(request, session, "ui-evidence-export",
          {"party": party, "tree_size": done.tree_size, "entries": done.entries})
    name = f"evidence-{party or 'all'}-{done.tree_size}.zip"
    safe = "".join(ch if ch.isalnum() or ch in "-._" else "_" for ch in name)
    return Response(archive, media_type="application/zip",
                    headers={"content-disposition": f'attachment; filename="{safe}"'})


def unpack(archive: bytes, into: Path) -> None:
    """Unpack a bundle zip: plain file names only (one top folder allowed), bounded in
    count and size; anything else is refused with a 422."""
    try:
        z = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile:
        raise HTTPException(422, "the upload is not a zip archive") from None
    infos = [i for i in z.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_FILES or sum(i.file_size for i in infos) > MAX_UNZIPPED:
        raise HTTPException(422, "the archive holds too many or too large files")
    budget = MAX_UNZIPPED
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if len(parts) > 2 or not parts or any(p in ("..", ".") or p.startswith(".") or
                                              "\\" in p for p in parts):
            raise HTTPException(422, f"unexpected path in the archive: {info.filename!r}")
        target = into / parts[-1]
        if target.exists():
            raise HTTPException(422, f"{parts[-1]} appears twice in the archive")
        with z.open(info) as src, target.open("wb") as out:
            while chunk := src.read(1 << 20):   # the sizes in the header may lie
                budget -= len(chunk)
                if budget < 0:
                    raise HTTPException(422, "the archive unpacks to more than 256 MiB")
                out.write(chunk)


@router.post("/ui/evidence/verify")
async def verify(request: Request, session: SessionDep) -> Response:
    data = await form(request, session)
    key = text(data, "key", 600, required=False) or None
    upload = data.get("bundle")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "choose a bundle (.zip) to verify")
    archive = await upload.read(MAX_UPLOAD + 1)
    if len(archive) > MAX_UPLOAD:
        raise HTTPException(413, "the archive is larger than 64 MiB")
    with tempfile.TemporaryDirectory(prefix="spywall-ui-verify-") as tmp:
        unpack(archive, Path(tmp))
        result = verify_bundle(Path(tmp), key)
    verified = {"status": STATUS.get(result.status, str(result.status)),
                "code": result.status, "problems": result.problems[:20],
                "entries": result.entries, "tree_size": result.tree_size,
                "origin": result.origin, "trusted": result.trusted,
                "witnesses": result.witnesses, "independent_key": key is not None}
    audit(request, session, "ui-evidence-verify", {"status": result.status})
    return render(request, "evidence.html", session, head=None, checkpoint=None, kinds=[],
                  parties=[], query={"party": "", "kind": "", "index": ""}, hits=[],
                  body="", verified=verified)

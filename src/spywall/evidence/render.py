"""The bundle's human-readable report: violations by party and court order, then every
other entry, each with its position in the log. HTML always; PDF through pikepdf (plain
text pages in Courier, no layout engine needed).

Evidence strings are data: escaped in HTML, replaced by ``?`` in the PDF where Latin-1
has no glyph; the JSON entries in the bundle stay exact.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Entry = tuple[int, dict[str, Any]]      # (index in the log, entry)


def _order_label(order: Any) -> str:
    if isinstance(order, dict):
        return " ".join(str(order.get(k, "")) for k in ("court", "case")).strip() + \
            (f" (order of {order['date']})" if order.get("date") else "")
    return str(order)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def violations_by_party(entries: Sequence[Entry]) -> dict[str, dict[str, list[Entry]]]:
    """party -> order label -> violations (log order)."""
    out: dict[str, dict[str, list[Entry]]] = {}
    for index, entry in entries:
        if entry.get("kind") != "violation":
            continue
        orders = entry.get("orders") or ["(no order named)"]
        for order in orders if isinstance(orders, list) else [orders]:
            out.setdefault(str(entry.get("party")), {}).setdefault(
                _order_label(order), []).append((index, entry))
    return out


VIOLATION_COLUMNS = ("position", "event", "type", "time", "verdict", "identifiers", "rule")


def _violation_row(index: int, e: dict[str, Any]) -> list[str]:
    return [str(index), _text(e.get("event")), _text(e.get("type")), _text(e.get("ts")),
            _text(e.get("verdict")), _text(e.get("identifiers")), _text(e.get("rule"))]


def _other_row(index: int, e: dict[str, Any]) -> list[str]:
    detail = {k: v for k, v in e.items() if k not in ("kind", "ts", "signature")}
    return [str(index), _text(e.get("kind")), _text(e.get("ts")), _text(detail)[:400]]


def lines(meta: dict[str, Any], entries: Sequence[Entry]) -> list[str]:
    """The report as plain text lines (the PDF's content)."""
    out = [f"Evidence report: {meta['origin']}", f"Checkpoint: tree size {meta['size']}, "
           f"root {meta['root']}", f"Exported {meta['created']}; selection: "
           f"{meta['selection']}", "", "VIOLATIONS BY PARTY AND ORDER", ""]
    for party, orders in sorted(violations_by_party(entries).items()):
        out.append(f"Party {party}")
        for order, rows in orders.items():
            out.append(f"  Order: {order}")
            for index, e in rows:
                out.append("    " + " | ".join(_violation_row(index, e)))
        out.append("")
    out += ["OTHER ENTRIES", ""]
    out += ["  " + " | ".join(_other_row(i, e)) for i, e in entries
            if e.get("kind") != "violation"]
    if meta.get("unlisted"):
        out.append(f"  ({meta['unlisted']} more entries are in entries.jsonl)")
    return out


def _table(head: Sequence[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def to_html(meta: dict[str, Any], entries: Sequence[Entry]) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Evidence report: {esc(meta['origin'])}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:2px 6px;font-size:90%;vertical-align:top}"
        "</style></head><body>",
        f"<h1>Evidence report: {esc(meta['origin'])}</h1>",
        f"<p>Signed checkpoint: tree size {meta['size']}, root hash "
        f"<code>{esc(meta['root'])}</code>. Exported {esc(meta['created'])}. Selection: "
        f"{esc(meta['selection'])}. Entries in this bundle: {meta['entries']}.</p>",
        "<p>Each row names the entry's position in the log. The entries themselves, with "
        "their inclusion proofs, are in <code>entries.jsonl</code>; check the whole bundle "
        "with <code>spywall evidence verify</code> (see README.txt).</p>",
        "<h2>Violations by party and order</h2>",
    ]
    by_party = violations_by_party(entries)
    if not by_party:
        parts.append("<p>No violation in this selection.</p>")
    for party, orders in sorted(by_party.items()):
        parts.append(f"<h3>Party {esc(party)}</h3>")
        for order, rows in orders.items():
            parts.append(f"<h4>{esc(order)}</h4>")
            parts.append(_table(VIOLATION_COLUMNS, [_violation_row(i, e) for i, e in rows]))
    others = [_other_row(i, e) for i, e in entries if e.get("kind") != "violation"]
    parts.append("<h2>Other entries</h2>")
    parts.append(_table(("position", "kind", "time", "detail"), others))
    if meta.get("unlisted"):
        parts.append(f"<p>{meta['unlisted']} more entries are in entries.jsonl and not "
                     "listed here.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _pdf_escape(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def write_pdf(path: Path, text_lines: Sequence[str], width: int = 120,
              per_page: int = 70) -> None:
    """Plain text pages (Courier 8 pt on A4) through pikepdf."""
    import pikepdf

    wrapped: list[str] = []
    for line in text_lines:
        while len(line) > width:
            wrapped.append(line[:width])
            line = "      " + line[width:]
        wrapped.append(line)
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
        BaseFont=pikepdf.Name.Courier, Encoding=pikepdf.Name.WinAnsiEncoding))
    for start in range(0, max(len(wrapped), 1), per_page):
        ops = [b"BT /F1 8 Tf 10 TL 36 806 Td"]
        ops += [b"(" + _pdf_escape(s) + b") Tj T*" for s in wrapped[start:start + per_page]]
        ops.append(b"ET")
        page = pdf.add_blank_page(page_size=(595, 842))
        page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        page.obj.Contents = pdf.make_stream(b"\n".join(ops))
    pdf.save(path, deterministic_id=True)

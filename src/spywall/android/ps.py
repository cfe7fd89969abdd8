"""``ps`` tables as Android's toybox ``ps`` prints them (androidqf ``ps.txt``, the
bugreport's ``PROCESSES AND THREADS`` section), one parser for both.

A header line names the columns (``USER PID PPID VSZ RSS WCHAN ADDR S NAME``; with
``-Z`` a ``LABEL`` column first; with ``-T`` a ``TID``; the last is ``NAME``, ``CMD``,
``COMMAND`` or ``ARGS`` and may hold spaces). ``WCHAN`` is printed blank for some
processes, so a row one column short is read with an empty ``WCHAN`` (as MVT does). A
name in brackets is a kernel thread (``[kworker/0:1]``); the brackets are taken off.

Records carry MVT's field names: ``user``, ``pid``, ``ppid``, ``virtual_memory_size``,
``resident_set_size``, ``wchan``, ``aprocress`` (MVT's spelling of the ADDR column),
``stat``, ``proc_name``, ``label``.
"""

from __future__ import annotations

import msgspec

from spywall.report import Scalar

MAX_ROWS = 500_000
LAST = ("NAME", "CMD", "COMMAND", "ARGS")
# header column -> MVT's field name (numbers as ints)
MVT_FIELDS = {
    "USER": "user",
    "PID": "pid",
    "PPID": "ppid",
    "VSZ": "virtual_memory_size",
    "RSS": "resident_set_size",
    "WCHAN": "wchan",
    "ADDR": "aprocress",
    "S": "stat",
    "LABEL": "label",
    "TID": "tid",
}
_NUMBERS = frozenset({"pid", "ppid", "virtual_memory_size", "resident_set_size", "tid"})


class PsRow(msgspec.Struct, frozen=True):
    name: str  # without the brackets of a kernel thread
    kernel_thread: bool
    columns: dict[str, str]  # header column -> value, the name column excluded

    @property
    def pid(self) -> str | None:
        return self.columns.get("PID")

    @property
    def user(self) -> str | None:
        return self.columns.get("USER")

    def mvt_fields(self) -> dict[str, Scalar]:
        """The row as MVT's process records name it (``label`` always present)."""
        out: dict[str, Scalar] = {"label": ""}
        for col, value in self.columns.items():
            key = MVT_FIELDS.get(col, col.lower())
            out[key] = int(value) if key in _NUMBERS and value.isdigit() else value
        out["proc_name"] = self.name
        return out


def is_header(line: str) -> bool:
    cols = line.split()
    return "PID" in cols and cols[-1] in LAST


def table(lines: list[str]) -> tuple[list[PsRow], int]:
    """(rows, rows of another shape skipped) of a table whose first line is its header;
    the table ends at a ``------`` line (the next dumpstate section)."""
    header = lines[0].split() if lines else []
    if not header:
        return [], 0
    width = len(header)
    pid_col = header.index("PID") if "PID" in header else -1
    wchan = header.index("WCHAN") if "WCHAN" in header else -1
    out: list[PsRow] = []
    bad = 0
    for line in lines[1 : MAX_ROWS + 1]:
        if line.startswith("------"):
            break
        cols = line.split()
        if not cols:
            continue
        if len(cols) == width - 1 and 0 <= wchan < width - 1:
            cols.insert(wchan, "")  # a blank WCHAN
        if len(cols) < width or (pid_col >= 0 and not cols[pid_col].isdigit()):
            bad += 1
            continue
        name = " ".join(cols[width - 1 :])
        kernel = len(name) > 2 and name.startswith("[") and name.endswith("]")
        out.append(
            PsRow(
                name[1:-1] if kernel else name,
                kernel,
                dict(zip(header[:-1], cols[: width - 1], strict=True)),
            )
        )
    return out, bad

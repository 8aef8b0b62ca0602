"""Import a draft's milestone schedule from CSV: preview every row with its errors, then all or none.

Columns: title, deliverable, amount, due date (header names matched case-insensitively; "due_date"
and "Due Date" alike; deliverable may be left out). Row numbers are the spreadsheet's: the header is
row 1, so the first milestone is row 2.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from backoffice.actor import Actor
from backoffice.db import unit_of_work
from backoffice.domain.money import example
from backoffice.errors import ValidationError
from backoffice.services.schedule import (
    MAX_MILESTONES,
    CleanRow,
    RowInput,
    append_milestones,
    check_row,
    editable_draft,
)

MAX_BYTES = 256 * 1024  # its base64 must fit the confirm form (Flask reads at most 500 KB of fields)
COLUMNS = ("title", "deliverable", "amount", "due_date")
REQUIRED = ("title", "amount", "due_date")
LABELS = {"title": "title", "deliverable": "deliverable", "amount": "amount", "due_date": "due date"}


def template_csv(currency: str = "USD") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Title", "Deliverable", "Amount", "Due date"])
    writer.writerow(["Design", "Floor plans and elevations, approved by the client", example(currency), "2026-12-15"])
    writer.writerow(
        ["Build", "Structure complete and inspected", example(currency).replace("1,250", "4,800"), "2027-02-28"]
    )
    return out.getvalue()


@dataclass
class PreviewRow:
    number: int  # as in the spreadsheet: the header is row 1
    values: dict[str, str]
    errors: dict[str, str]  # column -> message
    clean: CleanRow | None = None


@dataclass
class Preview:
    rows: list[PreviewRow] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    total_minor: int = 0

    @property
    def error_count(self) -> int:
        return len(self.file_errors) + sum(1 for r in self.rows if r.errors)

    @property
    def ok(self) -> bool:
        return self.error_count == 0 and bool(self.rows)


def _column_key(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("\ufeff", "").split()).lower().replace(" ", "_")


def preview(content: bytes, currency: str) -> Preview:
    """Read and check every row; nothing is written. File-level problems (not UTF-8, missing columns,
    too big, no rows) are in ``file_errors``; each row's problems are in its ``errors``."""
    result = Preview()
    if len(content) > MAX_BYTES:
        result.file_errors.append(
            f"The file is larger than {MAX_BYTES // 1024} KB; split the schedule into smaller files."
        )
        return result
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        result.file_errors.append(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” from your spreadsheet and upload it again."
        )
        return result
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            result.file_errors.append("The file is empty. Download the template to see the columns it needs.")
            return result
        keys = [_column_key(h) for h in header]
        missing = [LABELS[c] for c in REQUIRED if c not in keys]
        if missing:
            result.file_errors.append(
                f"The header row has no {', '.join(missing)} column. "
                "It needs: Title, Deliverable (optional), Amount, Due date."
            )
            return result
        dupes = sorted({LABELS[k] for k in keys if k in LABELS and keys.count(k) > 1})
        if dupes:
            result.file_errors.append(f"The header row has more than one {', '.join(dupes)} column.")
            return result
        index = {k: keys.index(k) for k in COLUMNS if k in keys}
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(result.rows) == MAX_MILESTONES:
                result.file_errors.append(
                    f"The file has more than {MAX_MILESTONES} milestones; "
                    f"an engagement can have at most {MAX_MILESTONES}."
                )
                break
            values = {k: (cells[i] if i < len(cells) else "") for k, i in index.items()}
            result.rows.append(_check(number, values, currency))
    except csv.Error as exc:
        result.file_errors.append(f"The file is not valid CSV near row {reader.line_num}: {exc}.")
        return result
    if not result.rows and not result.file_errors:
        result.file_errors.append("The file has a header row but no milestones.")
    result.total_minor = sum(r.clean.amount_minor for r in result.rows if r.clean)
    return result


def _check(number: int, values: dict[str, str], currency: str) -> PreviewRow:
    errors: dict[str, str] = {}
    row = RowInput(
        title=values.get("title", ""),
        deliverable=values.get("deliverable", ""),
        amount=values.get("amount", ""),
        due_date=values.get("due_date", ""),
    )
    title, deliverable, minor, due = check_row(row, "r", currency, errors)
    column_errors = {key.removeprefix("r-"): msg for key, msg in errors.items()}
    clean = None if column_errors else CleanRow(title=title, deliverable=deliverable, amount_minor=minor, due_date=due)
    return PreviewRow(number=number, values=values, errors=column_errors, clean=clean)


def import_schedule(session: Session, actor: Actor, engagement_id, content: bytes, filename: str = "") -> int:
    """Append every row of the file to a draft's schedule, or none if any row has an error. The file is
    checked again here: what the preview showed is not trusted. Returns the number of milestones added."""
    with unit_of_work(session):
        engagement = editable_draft(session, actor, engagement_id)
        result = preview(content, engagement.currency)
        if not result.ok:
            raise ValidationError({"file": _summary(result)})
        rows = [r.clean for r in result.rows]
        added = append_milestones(session, actor, engagement, rows, f"CSV {filename}".strip())
    return added


def _summary(result: Preview) -> str:
    if result.file_errors:
        return result.file_errors[0]
    bad = [str(r.number) for r in result.rows if r.errors]
    return (
        f"Nothing was imported: fix row{'s' if len(bad) > 1 else ''} "
        f"{', '.join(bad[:10])}{'…' if len(bad) > 10 else ''} and upload again."
    )

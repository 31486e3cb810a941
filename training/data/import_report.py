"""What an adapter kept and dropped, written as ``import_report.json`` beside the tables.

Rows dropped on purpose (cancellations, missing customer, non-product codes) are counted by
reason so that the training report and ``fairshelf data summary`` can show them (SPEC §3).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd

from fairshelf.errors import DataValidationError

REPORT_FILE: Final[str] = "import_report.json"


@dataclass
class ImportReport:
    """Counts of an import.

    Attributes
    ----------
    source:
        Name of the adapter (``online-retail``, ``movielens``).
    source_path:
        The file or directory read.
    source_rows:
        Rows in the source's main table.
    events:
        Event rows written.
    dropped:
        Rows dropped, by reason (the reasons are documented in docs/data.md).
    converted:
        Rows kept but turned into something else, by what they became
        (e.g. cancellations -> ``return`` events).
    reference:
        Figures a person can reconcile against the source's own documentation.
    notes:
        Mapping choices worth reading before using the data.
    """

    source: str
    source_path: str
    source_rows: int
    events: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    converted: dict[str, int] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int) -> None:
        """Record ``count`` rows dropped for ``reason`` (zero counts are kept, for clarity)."""
        self.dropped[reason] = self.dropped.get(reason, 0) + int(count)

    def write(self, directory: Path | str) -> Path:
        """Write ``import_report.json`` into ``directory`` and return its path."""
        path = Path(directory) / REPORT_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path


def read_report(directory: Path | str) -> ImportReport | None:
    """Load ``import_report.json`` from ``directory``; None when the directory has none.

    Raises
    ------
    DataValidationError
        If the file exists but is not a report.
    """
    path = Path(directory) / REPORT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ImportReport(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise DataValidationError(f"not an import report: {exc}", file=str(path)) from exc


@dataclass(frozen=True)
class ImportedData:
    """The canonical tables an adapter produced, with its report."""

    events: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None
    report: ImportReport

    def write(self, out_dir: Path | str) -> list[Path]:
        """Write ``events.parquet``, ``items.parquet``, ``users.parquet`` (when present) and
        ``import_report.json`` into ``out_dir`` (created if missing); return the paths."""
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        written = [d / "events.parquet", d / "items.parquet"]
        self.events.to_parquet(written[0], index=False)
        self.items.to_parquet(written[1], index=False)
        if self.users is not None:
            written.append(d / "users.parquet")
            self.users.to_parquet(written[-1], index=False)
        self.report.events = len(self.events)
        written.append(self.report.write(d))
        return written

"""Read events, items and users from Parquet or CSV into canonical, validated DataFrames.

A dataset directory holds ``events.<ext>``, ``items.<ext>`` and optionally ``users.<ext>``
where ``<ext>`` is ``parquet`` or ``csv`` (``csv.gz`` works too). Every reader validates what
it reads (see :mod:`training.data.validate`), so a caller either gets clean data or a
:class:`~fairshelf.errors.DataValidationError` naming the file, row and column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import pandas as pd
import pyarrow as pa

from fairshelf.errors import DataValidationError, NotFound
from recsys.schema import EVENT_COLUMNS, ITEM_COLUMNS
from training.data.rejects import Rejects, split_events, split_items
from training.data.validate import validate_events, validate_items, validate_users

SUFFIXES: Final[tuple[str, ...]] = (".parquet", ".csv", ".csv.gz")
TABLES: Final[tuple[str, ...]] = ("events", "items", "users")

Validator = Callable[..., pd.DataFrame]
_VALIDATORS: Final[dict[str, Validator]] = {
    "events": validate_events,
    "items": validate_items,
    "users": validate_users,
}


def is_csv(path: Path) -> bool:
    """Whether ``path`` is read as CSV (by its name; anything else is Parquet)."""
    name = path.name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def read_raw(path: Path | str) -> pd.DataFrame:
    """Read a Parquet or CSV file as is (CSV cells stay strings).

    Parameters
    ----------
    path:
        The file.

    Returns
    -------
    pandas.DataFrame
        The raw table.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataValidationError
        If the file is empty or not readable in its format.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    if p.stat().st_size == 0:
        raise DataValidationError("file is empty (0 bytes)", file=str(p))
    if is_csv(p):
        try:
            # Strings everywhere: the validator parses each column and can name bad cells.
            return pd.read_csv(p, dtype="str", keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError as exc:
            raise DataValidationError("file is empty (no header row)", file=str(p)) from exc
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataValidationError(f"not a readable CSV file: {exc}", file=str(p)) from exc
    try:
        return pd.read_parquet(p)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataValidationError(f"not a readable Parquet file: {exc}", file=str(p)) from exc


def read_table(path: Path | str, kind: str) -> pd.DataFrame:
    """Read and validate one table.

    Parameters
    ----------
    path:
        A ``.parquet``, ``.csv`` or ``.csv.gz`` file.
    kind:
        ``"events"``, ``"items"`` or ``"users"``.

    Returns
    -------
    pandas.DataFrame
        The table in canonical dtypes.

    Raises
    ------
    DataValidationError
        If the file breaks the data contract.
    """
    if kind not in _VALIDATORS:
        raise ValueError(f"unknown table kind {kind!r}")
    p = Path(path)
    return _VALIDATORS[kind](read_raw(p), file=str(p), csv=is_csv(p))


InvalidRows = Literal["fail", "skip"]


def read_lenient(path: Path | str, kind: str) -> tuple[pd.DataFrame, Rejects]:
    """Read events or items, setting bad rows aside instead of failing on the first one.

    See :mod:`training.data.rejects` for what is set aside and why. Problems of the whole file
    (unreadable, empty, a required column missing, no good row left) still raise.

    Returns
    -------
    (table, rejects):
        The canonical table of the good rows and the list of the others.

    Raises
    ------
    DataValidationError
        If the file as a whole breaks the data contract.
    """
    p = Path(path)
    raw = read_raw(p)
    spec = EVENT_COLUMNS if kind == "events" else ITEM_COLUMNS
    if kind not in ("events", "items"):
        raise ValueError(f"no lenient reader for table kind {kind!r}")
    if raw.empty or any(req and col not in raw.columns for col, req in spec.items()):
        # The strict validator names the structural problem.
        _VALIDATORS[kind](raw, file=str(p), csv=is_csv(p))
    if kind == "events":
        kept, rejects = split_events(raw, str(p))
        return validate_events(kept, file=str(p), csv=is_csv(p)), rejects
    kept, rejects = split_items(raw, str(p))
    return validate_items(kept, file=str(p), csv=is_csv(p), allow_unpriced=True), rejects


def read_checked(
    path: Path | str, kind: str, invalid_rows: InvalidRows = "fail"
) -> tuple[pd.DataFrame, Rejects]:
    """:func:`read_table` (``fail``) or :func:`read_lenient` (``skip``)."""
    if invalid_rows == "skip":
        return read_lenient(path, kind)
    return read_table(path, kind), Rejects()


def read_events(path: Path | str) -> pd.DataFrame:
    """Read and validate an event file (Parquet or CSV); see :func:`read_table`."""
    return read_table(path, "events")


def read_items(path: Path | str) -> pd.DataFrame:
    """Read and validate an item file (Parquet or CSV); see :func:`read_table`."""
    return read_table(path, "items")


def read_users(path: Path | str) -> pd.DataFrame:
    """Read and validate a user file (Parquet or CSV); see :func:`read_table`."""
    return read_table(path, "users")


def find_table(directory: Path | str, kind: str) -> Path | None:
    """The file holding table ``kind`` in ``directory``, or None when there is none.

    Raises
    ------
    DataValidationError
        If the directory holds the table in more than one format (which one to trust?).
    """
    d = Path(directory)
    found = [d / f"{kind}{suffix}" for suffix in SUFFIXES if (d / f"{kind}{suffix}").is_file()]
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise DataValidationError(
            f"table {kind!r} is stored twice ({names}); keep one", file=str(d)
        )
    return found[0] if found else None


def read_dataset(
    directory: Path | str,
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Read a dataset directory: events (required), items and users (optional).

    Parameters
    ----------
    directory:
        Holds ``events.parquet`` or ``events.csv`` and optionally items and users files.

    Returns
    -------
    tuple
        ``(events, items or None, users or None)``, validated and canonical.

    Raises
    ------
    NotFound
        If the directory does not exist or has no events file.
    DataValidationError
        If any file breaks the data contract.
    """
    d = Path(directory)
    if not d.is_dir():
        raise NotFound(f"no such dataset directory: {d}")
    events_path = find_table(d, "events")
    if events_path is None:
        raise NotFound(f"no events.parquet or events.csv in {d}")
    items_path = find_table(d, "items")
    users_path = find_table(d, "users")
    events = read_events(events_path)
    items = read_items(items_path) if items_path else None
    users = read_users(users_path) if users_path else None
    return events, items, users

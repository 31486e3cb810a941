"""Versioned guardrail sets in the embedded store: who, when, why and the diff of every change.

Every change (put, delete, rollback) writes a new row holding the whole set as JSON, so any
version can be read back, compared or restored, and nothing is ever overwritten: a rollback is
itself a new version whose content equals an older one. Writers may pass the version they read
(``expected_version``); a mismatch fails with ``FailedPrecondition`` instead of silently
overwriting another person's change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from fairshelf.errors import FailedPrecondition, InvalidArgument, NotFound
from pricing.fairness.change_audit import audit_guardrail_change
from pricing.fairness.ports import AuditSink
from pricing.guardrail_rules import Guardrail, parse_scope_id
from pricing.guardrails import EffectiveGuardrail, GuardrailSet, diff_sets
from serving.api_models import (
    DeleteGuardrailsIn,
    EffectiveGuardrailOut,
    GuardrailChangeOut,
    GuardrailHistoryOut,
    GuardrailsOut,
    GuardrailValuesIn,
    PutGuardrailsIn,
    RollbackGuardrailsIn,
)
from serving.contract import MAX_HISTORY, MAX_VERSION
from serving.store.audit_store import AuditStore
from serving.store.db import METADATA, Database

GUARDRAIL_VERSIONS = Table(
    "guardrail_versions",
    METADATA,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("created_us", BigInteger, nullable=False),
    Column("author", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("scope", String(512), nullable=False),
    Column("document", Text, nullable=False),
    Column("diff", Text, nullable=False),
)


@dataclass(frozen=True)
class GuardrailChange:
    """One version of the guardrail set and the change that produced it."""

    version: int
    at: datetime
    author: str
    reason: str
    action: str
    scope: str
    diff: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "version": self.version,
            "at": self.at.isoformat(),
            "author": self.author,
            "reason": self.reason,
            "action": self.action,
            "scope": self.scope,
            "diff": self.diff,
        }


def _now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def _require_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name} is required for a guardrail change", field=name)
    return value.strip()


class GuardrailStore:
    """Read, change and roll back the versioned guardrail set.

    Parameters
    ----------
    db:
        SQLite (WAL) or PostgreSQL handle; the table is created if missing.
    audit:
        The fairness audit log (rule G5) in the same database; when given, every change is
        also recorded there (who, when, why, the diff), next to the guard's interventions,
        in the transaction that makes the change.

    Raises
    ------
    InvalidArgument
        If ``audit`` lives in another database (the two could not commit together).
    """

    def __init__(self, db: Database, audit: AuditStore | None = None) -> None:
        if audit is not None:
            audit.require_database(db, "guardrails")
        self.db = db
        self.audit = audit
        db.create_tables(GUARDRAIL_VERSIONS)

    # -- reading ---------------------------------------------------------------------------
    def current(self) -> GuardrailSet:
        """The set in force (version 0, empty, before any change)."""
        with self.db.engine.connect() as conn:
            return _current_on(conn)

    def get_version(self, version: int) -> GuardrailSet:
        """The set as it was at ``version``.

        Raises
        ------
        NotFound
            No such version (field ``version``).
        """
        if version == 0:
            return GuardrailSet()
        stmt = select(GUARDRAIL_VERSIONS).where(GUARDRAIL_VERSIONS.c.version == version)
        with self.db.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"no guardrail version {version}", field="version")
        return GuardrailSet.from_document(version, json.loads(row["document"]))

    def get(self, scope_id: str) -> Guardrail:
        """The rule set at exactly ``scope_id`` (``global``, ``category:<path>``, ``item:<id>``).

        Raises
        ------
        NotFound
            Nothing set at that scope.
        """
        scope, key = parse_scope_id(scope_id)
        return self.current().get(scope, key)

    def history(self, limit: int = 100, offset: int = 0) -> list[GuardrailChange]:
        """The latest ``limit`` changes after skipping ``offset`` newer ones, newest first."""
        stmt = (
            select(GUARDRAIL_VERSIONS)
            .order_by(GUARDRAIL_VERSIONS.c.version.desc())
            .limit(max(1, int(limit)))
            .offset(max(0, int(offset)))
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [
            GuardrailChange(
                version=int(r["version"]),
                at=datetime.fromtimestamp(r["created_us"] / 1_000_000, UTC),
                author=r["author"],
                reason=r["reason"],
                action=r["action"],
                scope=r["scope"],
                diff=json.loads(r["diff"]),
            )
            for r in rows
        ]

    def versions_at(self, times: Sequence[datetime]) -> list[int]:
        """The version in force at each of ``times`` (ascending), 0 before the first change.

        Versions are numbered 1, 2, ... in the order they were made, so each answer is a binary
        search over version numbers (primary-key reads of one column), and a run of times under
        one version costs two searches however long it is: a chart over days of epochs reads a
        few dozen rows, not the history.
        """
        if not times:
            return []
        v = GUARDRAIL_VERSIONS.c
        stamps = [int(t.timestamp() * 1_000_000) for t in times]
        out = [0] * len(stamps)
        with self.db.engine.connect() as conn:
            top = int(conn.execute(select(func.max(v.version))).scalar() or 0)
            created: dict[int, int] = {}

            def made(n: int) -> int:
                if n not in created:
                    stmt = select(v.created_us).where(v.version == n)
                    created[n] = int(conn.execute(stmt).scalar_one())
                return created[n]

            def find(at: int, lo: int, hi: int) -> int:
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if made(mid) <= at else (lo, mid - 1)
                return lo

            def fill(i: int, j: int) -> None:
                if j - i <= 1:
                    return
                if out[i] == out[j]:
                    out[i + 1 : j] = [out[i]] * (j - i - 1)
                    return
                m = (i + j) // 2
                out[m] = find(stamps[m], out[i], out[j])
                fill(i, m)
                fill(m, j)

            out[0] = find(stamps[0], 0, top)
            out[-1] = find(stamps[-1], out[0], top)
            fill(0, len(stamps) - 1)
        return out

    def count(self) -> int:
        """How many versions are stored (the newest version number)."""
        with self.db.engine.connect() as conn:
            top = conn.execute(select(func.max(GUARDRAIL_VERSIONS.c.version))).scalar()
        return int(top or 0)

    def effective(self, item_id: str, category: str) -> EffectiveGuardrail:
        """The guardrail that applies to one item now (narrowest scope wins, field by field)."""
        return self.current().effective(item_id, category)

    # -- changing --------------------------------------------------------------------------
    def put(
        self,
        rule: Guardrail,
        *,
        author: str,
        reason: str,
        expected_version: int | None = None,
    ) -> GuardrailChange:
        """Set (replace) the rule of ``rule.scope_id``; validated against the whole set.

        Raises
        ------
        InvalidArgument
            Invalid rule or a set whose inherited bounds cross; empty author or reason.
        FailedPrecondition
            ``expected_version`` is not the current version, or a concurrent change won.
        """
        return self._change(
            lambda cur: cur.with_rule(rule), "put", rule.scope_id, author, reason, expected_version
        )

    def delete(
        self, scope_id: str, *, author: str, reason: str, expected_version: int | None = None
    ) -> GuardrailChange:
        """Remove the rule at ``scope_id`` (its fields then inherit from broader scopes)."""
        scope, key = parse_scope_id(scope_id)
        return self._change(
            lambda cur: cur.without(scope, key),
            "delete",
            scope_id,
            author,
            reason,
            expected_version,
        )

    def rollback(
        self, version: int, *, author: str, reason: str, expected_version: int | None = None
    ) -> GuardrailChange:
        """Restore the content of ``version`` as a new version (history is kept).

        Raises
        ------
        NotFound
            ``version`` does not exist.
        """
        old = self.get_version(version)
        return self._change(
            lambda cur: GuardrailSet(cur.version + 1, old.rules),
            f"rollback:{version}",
            "*",
            author,
            reason,
            expected_version,
        )

    def _change(
        self,
        make: Any,
        action: str,
        scope_id: str,
        author: str,
        reason: str,
        expected_version: int | None,
    ) -> GuardrailChange:
        author = _require_text("author", author)
        reason = _require_text("reason", reason)

        def apply(conn: Connection, audit: AuditSink | None) -> GuardrailChange:
            top = conn.execute(select(func.max(GUARDRAIL_VERSIONS.c.version))).scalar()
            cur_version = int(top or 0)
            if expected_version is not None and expected_version != cur_version:
                raise FailedPrecondition(
                    f"guardrails changed: expected version {expected_version}, "
                    f"current is {cur_version}; read again and retry",
                    field="expected_version",
                )
            current = _current_on(conn)
            new: GuardrailSet = make(current)
            diff = diff_sets(current, new)
            at = _now_us()
            try:
                conn.execute(
                    GUARDRAIL_VERSIONS.insert().values(
                        version=new.version,
                        created_us=at,
                        author=author,
                        reason=reason,
                        action=action,
                        scope=scope_id,
                        document=json.dumps(new.to_document(), sort_keys=True),
                        diff=json.dumps(diff, sort_keys=True),
                    )
                )
            except IntegrityError:
                raise FailedPrecondition(
                    "a concurrent guardrail change won; read again and retry",
                    field="expected_version",
                ) from None
            if audit is not None:
                audit_guardrail_change(
                    audit,
                    actor=author,
                    reason=reason,
                    scope=scope_id,
                    version=new.version,
                    changes=diff,
                )
            return GuardrailChange(
                version=new.version,
                at=datetime.fromtimestamp(at / 1_000_000, UTC),
                author=author,
                reason=reason,
                action=action,
                scope=scope_id,
                diff=diff,
            )

        if self.audit is not None:
            # One transaction: the change is in force exactly when its audit record exists.
            return self.audit.atomically(apply)
        with self.db.engine.begin() as conn:
            return apply(conn, None)

    # -- the serving port (serving.service.GuardrailsPort) ---------------------------------
    def get_out(self, scope: str) -> GuardrailsOut:
        """The rule of one scope as the API model (empty values when nothing is set)."""
        scope_kind, key = parse_scope_id(scope)
        current = self.current()
        try:
            rule = current.get(scope_kind, key)
            values = _values_out(rule)
        except NotFound:
            values = GuardrailValuesIn()
        last = self._last_change_of(scope)
        return GuardrailsOut(
            scope=scope,
            values=values,
            version=current.version,
            updated_by=last.author if last else "",
            updated_at=last.at.isoformat() if last else "",
            reason=last.reason if last else "",
        )

    def put_out(self, scope: str, body: PutGuardrailsIn, actor: str) -> GuardrailsOut:
        """Validate, version and store the rule of ``scope`` from the API model."""
        rule = rule_from_body(scope, body)
        self.put(rule, author=actor, reason=body.reason, expected_version=body.expected_version)
        return self.get_out(scope)

    def rollback_out(self, body: RollbackGuardrailsIn, actor: str) -> GuardrailChangeOut:
        """Restore the content of ``body.version`` as a new version (API model)."""
        if body.version is None or not 0 <= body.version <= MAX_VERSION:
            raise InvalidArgument(
                f"version must be a stored guardrail version in 0..{MAX_VERSION}, "
                f"got {body.version!r}",
                field="version",
            )
        change = self.rollback(
            body.version, author=actor, reason=body.reason, expected_version=body.expected_version
        )
        return change_out(change)

    def delete_out(self, scope: str, body: DeleteGuardrailsIn, actor: str) -> GuardrailChangeOut:
        """Remove the rule of ``scope`` as a new version (API model).

        Raises
        ------
        NotFound
            ``scope`` has no rule (field ``scope``).
        """
        try:
            change = self.delete(
                scope, author=actor, reason=body.reason, expected_version=body.expected_version
            )
        except NotFound:
            raise NotFound(f"no guardrail rule is set for scope {scope!r}", field="scope") from None
        return change_out(change)

    def history_out(self, limit: int | None) -> GuardrailHistoryOut:
        """The latest changes, newest first (API model)."""
        n = 100 if limit is None else limit
        if not 1 <= n <= MAX_HISTORY:
            raise InvalidArgument(
                f"limit must be between 1 and {MAX_HISTORY}, got {n}", field="limit"
            )
        changes = self.history(limit=n)
        version = changes[0].version if changes else 0
        return GuardrailHistoryOut(changes=[change_out(c) for c in changes], version=version)

    def effective_out(self, item_id: str, category: str) -> EffectiveGuardrailOut:
        """The guardrail in force for one item of ``category`` (API model)."""
        return effective_out(self.effective(item_id, category))

    def _last_change_of(self, scope: str) -> GuardrailChange | None:
        for change in self.history(limit=MAX_HISTORY):
            if change.scope in (scope, "*"):
                return change
        return None


def rule_from_body(scope: str, body: PutGuardrailsIn) -> Guardrail:
    """The rule a PUT of ``body`` at ``scope`` would set (validated; the set is not).

    Raises
    ------
    InvalidArgument
        A bad scope id or a field the rule validation refuses (named in ``field``).
    """
    scope_kind, key = parse_scope_id(scope)
    fields: dict[str, Any] = {k: v for k, v in body.values.model_dump().items() if v is not None}
    return Guardrail.from_dict({"scope": scope_kind, "key": key, **fields})


def change_out(change: GuardrailChange) -> GuardrailChangeOut:
    """The API form of one guardrail change."""
    return GuardrailChangeOut(**change.to_dict())


def effective_out(eff: EffectiveGuardrail) -> EffectiveGuardrailOut:
    """The API form of an item's effective guardrail (price ending as text, like ``".99"``)."""
    data = eff.to_dict()
    ending = data.pop("price_ending", None)
    known = set(EffectiveGuardrailOut.model_fields)
    return EffectiveGuardrailOut(
        **{k: v for k, v in data.items() if k in known},
        price_ending=None if ending is None else f"{ending:.2f}",
    )


def _current_on(conn: Connection) -> GuardrailSet:
    stmt = select(GUARDRAIL_VERSIONS).order_by(GUARDRAIL_VERSIONS.c.version.desc()).limit(1)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        return GuardrailSet()
    return GuardrailSet.from_document(int(row["version"]), json.loads(row["document"]))


def _values_out(rule: Guardrail) -> GuardrailValuesIn:
    known = set(GuardrailValuesIn.model_fields)
    values = {k: v for k, v in rule.rules().items() if k in known}
    if "price_ending" in values:
        values["price_ending"] = f"{values['price_ending']:.2f}"
    return GuardrailValuesIn(**values)

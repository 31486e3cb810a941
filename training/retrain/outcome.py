"""How a retraining run ended: its outcome, exit code and what it measured and did."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from training.retrain.gate import GateResult


class Outcome(StrEnum):
    """How a run ended."""

    PUBLISHED = "published"
    PASSED_DRY_RUN = "passed_dry_run"
    REFUSED = "refused"
    NO_EVIDENCE = "no_evidence"
    NOTHING_NEW = "nothing_new"
    FAILED = "failed"


# The process exit code of each outcome (2 is bad input, 5 the lock: see docs/retraining.md).
EXIT_CODES: dict[Outcome, int] = {
    Outcome.PUBLISHED: 0,
    Outcome.PASSED_DRY_RUN: 0,
    Outcome.REFUSED: 3,
    Outcome.NO_EVIDENCE: 4,
    Outcome.NOTHING_NEW: 4,
    Outcome.FAILED: 1,
}
EXIT_LOCKED = 5


@dataclass
class RetrainResult:
    """What a run did; ``exit_code`` is the process's."""

    run_id: str
    outcome: Outcome
    reason: str
    champion: str
    run_dir: Path
    challenger: str | None = None
    gate: GateResult | None = None
    pruned: list[str] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The documented exit code of the outcome."""
        return EXIT_CODES[self.outcome]

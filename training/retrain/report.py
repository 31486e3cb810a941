"""The report of one retraining run: ``report.md``, ``report.json`` and ``gate.png``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from training.data.rejects import Rejects
from training.retrain.gate import GateResult
from training.retrain.outcome import RetrainResult

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
GATE_PLOT = "gate.png"
REJECTS_CSV = "rejects.csv"


def run_dict(result: RetrainResult) -> dict[str, Any]:
    """The JSON form of a run."""
    return {
        "run_id": result.run_id,
        "outcome": str(result.outcome),
        "exit_code": result.exit_code,
        "reason": result.reason,
        "champion": result.champion,
        "challenger": result.challenger,
        "gate": result.gate.as_dict() if result.gate else None,
        "pruned": result.pruned,
        "rejects": result.rejects,
        "data": result.data,
        "timings_seconds": {k: round(v, 3) for k, v in result.timings.items()},
    }


def _gate_plot(gate: GateResult, path: Path) -> None:
    names = list(gate.comparisons)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    left, right = axes
    x = range(len(names))
    champ = [gate.comparisons[n].champion for n in names]
    chall = [gate.comparisons[n].challenger for n in names]
    left.bar([i - 0.2 for i in x], champ, width=0.4, label="champion", color="#4477aa")
    left.bar([i + 0.2 for i in x], chall, width=0.4, label="challenger", color="#ee6677")
    left.set_xticks(list(x), names)
    left.set_title(f"window: {gate.n_users} shoppers, {gate.n_purchases} purchases")
    left.legend(fontsize=8)
    for i, n in enumerate(names):
        c = gate.comparisons[n]
        right.errorbar(
            c.difference,
            i,
            xerr=[[c.difference - c.low], [c.high - c.difference]],
            fmt="o",
            color="#228833",
            capsize=4,
        )
    right.axvline(0.0, color="grey", lw=1)
    right.axvline(-gate.tolerance, color="#ee6677", ls="--", lw=1, label="- tolerance")
    right.set_yticks(list(x), names)
    right.set_title("challenger - champion (paired bootstrap interval)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _markdown(d: dict[str, Any], gate: GateResult | None) -> str:
    lines = [
        f"# Retraining run {d['run_id']}",
        "",
        f"- outcome: **{d['outcome']}** (exit code {d['exit_code']})",
        f"- why: {d['reason']}",
        f"- champion: {d['champion']}",
        f"- published: {d['challenger'] or 'nothing; current unchanged'}",
    ]
    if d["pruned"]:
        lines.append(f"- pruned: {', '.join(d['pruned'])}")
    lines += ["", "## Data", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in d["data"].items()]
    if gate is not None:
        lines += [
            "",
            "## Gate",
            "",
            f"Window {gate.window_start} .. {gate.window_end}: {gate.n_users} shoppers known to "
            f"both models, {gate.n_purchases} purchases of {gate.n_items} items both know; "
            f"tolerance {gate.tolerance:g}.",
            "",
            "| metric | champion | challenger | difference | interval |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for name, c in gate.comparisons.items():
            lines.append(
                f"| {name} | {c.champion:.4f} | {c.challenger:.4f} | {c.difference:+.4f} | "
                f"{c.level:.0%} [{c.low:+.4f}, {c.high:+.4f}] |"
            )
        if gate.comparisons:
            lines += ["", f"![gate]({GATE_PLOT})"]
    lines += ["", "## Invalid rows", ""]
    if d["rejects"]:
        lines += [f"- {k}: {v}" for k, v in d["rejects"].items()]
        lines.append("- every row with its reason: rejects.csv")
    else:
        lines.append("- none")
    lines += ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.1f}" for k, v in d["timings_seconds"].items()]
    return "\n".join(lines) + "\n"


def write_run_report(run_dir: Path, result: RetrainResult, rejects: Rejects) -> Path:
    """Write the run's report files (and ``rejects.csv`` when rows were set aside) into
    ``run_dir``; returns the Markdown path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if len(rejects.rows):
        rejects.write(run_dir / REJECTS_CSV)
    d = run_dict(result)
    (run_dir / REPORT_JSON).write_text(json.dumps(d, indent=2, default=str))
    if result.gate is not None and result.gate.comparisons:
        _gate_plot(result.gate, run_dir / GATE_PLOT)
    md = run_dir / REPORT_MD
    md.write_text(_markdown(d, result.gate))
    return md

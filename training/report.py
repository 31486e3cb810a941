"""The human-readable evaluation report (``report.md`` + PNG plots) written into the bundle."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from recsys.bundle import Manifest

PLOTS_DIR = "plots"


def metric_table(metrics: dict[str, dict[str, dict[str, float]]], k: int) -> str:
    """Markdown table: one row per model, Recall/NDCG/Hit/MAP/coverage at ``k`` per mode."""
    models = sorted({m for mode in metrics.values() for m in mode}, key=_model_order)
    head = "| model | " + " | ".join(
        f"{mode} {name}@{k}"
        for mode in ("all", "novel")
        for name in ("recall", "ndcg", "hit_rate", "map", "coverage")
    )
    lines = [head + " |", "|" + " --- |" * (1 + 10)]
    for m in models:
        cells = []
        for mode in ("all", "novel"):
            row = metrics.get(mode, {}).get(m, {})
            for name in ("recall", "ndcg", "hit_rate", "map", "coverage"):
                v = row.get(f"{name}@{k}")
                cells.append("—" if v is None else f"{v:.4f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _model_order(name: str) -> tuple[int, str]:
    return (1 if name.startswith("baseline/") else 0, name)


def _bar_plot(metrics: dict[str, dict[str, dict[str, float]]], k: int, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, mode in zip(axes, ("all", "novel"), strict=True):
        rows = metrics.get(mode, {})
        names = sorted(rows, key=_model_order)
        ax.barh(names, [rows[n].get(f"recall@{k}", 0.0) for n in names], color="#4477aa")
        ax.set_title(f"Recall@{k} ({mode} purchases)")
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _k_plot(metrics: dict[str, dict[str, dict[str, float]]], ks: list[int], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, row in sorted(metrics.get("all", {}).items(), key=lambda x: _model_order(x[0])):
        ax.plot(ks, [row.get(f"recall@{k}", 0.0) for k in ks], marker="o", label=name)
    ax.set_xlabel("K")
    ax.set_ylabel("Recall@K (all purchases)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _blend_plot(trials: list[dict[str, object]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    rep = [t for t in trials if t.get("step") == "repeat"]
    for hl in sorted({float(str(t["half_life"])) for t in rep}):
        pts = [t for t in rep if float(str(t["half_life"])) == hl]
        ax.plot(
            [float(str(t["repeat_weight"])) for t in pts],
            [float(str(t["recall@20"])) for t in pts],
            marker="o",
            label=f"half-life {hl:g} d",
        )
    ax.set_xlabel("buy-again weight")
    ax.set_ylabel("validation Recall@20 (all)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(
    bundle_dir: Path, manifest: Manifest, trials: list[dict[str, object]], notes: list[str]
) -> None:
    """Write ``report.md`` and ``plots/*.png`` into ``bundle_dir`` (before hashing)."""
    plots = bundle_dir / PLOTS_DIR
    plots.mkdir(exist_ok=True)
    lines = [
        f"# Training report — {manifest.bundle_id}",
        "",
        f"Default model: **{manifest.model}**, seed {manifest.seed}, data fingerprint "
        f"`{manifest.data_fingerprint[:16]}`.",
        f"Training data: {manifest.data.n_events} events, {manifest.data.n_users} users, "
        f"{manifest.data.n_items} items; dropped rows: {manifest.data.dropped_rows or 'none'}.",
        "",
    ]
    ev = manifest.evaluation
    if ev is not None and manifest.metrics:
        ks = ev.k_values
        lines += [
            f"## Temporal evaluation (cut {ev.cut}; blend chosen on validation cut "
            f"{ev.validation_cut})",
            "",
            f"Evaluated shoppers: {ev.n_eval_users}. `all` = every purchase after the cut; "
            "`novel` = items the shopper had not bought before (filtered from the lists).",
            "",
        ]
        for k in ks:
            lines += [f"### K = {k}", "", metric_table(manifest.metrics, k), ""]
        _bar_plot(manifest.metrics, 20 if 20 in ks else ks[0], plots / "recall_by_model.png")
        _k_plot(manifest.metrics, ks, plots / "recall_by_k.png")
        lines += ["![recall by model](plots/recall_by_model.png)", ""]
        lines += ["![recall by K](plots/recall_by_k.png)", ""]
    if trials:
        _blend_plot(trials, plots / "blend_search.png")
        lines += [
            "## Blend chosen on the validation cut",
            "",
            f"ALS factors {manifest.als.factors}; hybrid {manifest.hybrid.model_dump()}.",
            "",
            "![blend search](plots/blend_search.png)",
            "",
        ]
    lines += ["## Indexes and export", ""]
    lines.append(
        f"- ALS index: {manifest.als.index.kind}, recall@20 vs exact "
        f"{manifest.als.index.recall_at_20:.4f}"
    )
    if manifest.two_tower is not None:
        tt = manifest.two_tower
        lines.append(
            f"- two-tower index: {tt.index.kind}, recall@20 vs exact {tt.index.recall_at_20:.4f};"
            f" ONNX parity max abs diff {tt.parity_max_abs_diff:.2e}"
        )
    lines += ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.1f}" for k, v in manifest.timings_seconds.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    (bundle_dir / "report.md").write_text("\n".join(lines) + "\n")

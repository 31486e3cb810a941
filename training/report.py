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
    """Recall@K and NDCG@K of every model and baseline, one panel per metric and split."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    for col, mode in enumerate(("all", "novel")):
        rows = metrics.get(mode, {})
        for row, metric in enumerate(("recall", "ndcg")):
            ax = axes[row][col]
            for name in sorted(rows, key=_model_order):
                style = "--" if name.startswith("baseline/") else "-"
                vals = [rows[name].get(f"{metric}@{k}", float("nan")) for k in ks]
                ax.plot(ks, vals, style, marker="o", markersize=3, label=name)
            ax.set_xscale("log")
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.set_title(f"{metric.upper() if metric == 'ndcg' else 'Recall'}@K ({mode})")
            ax.set_xlabel("K")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def quality_table(metrics: dict[str, dict[str, dict[str, float]]], k: int) -> str:
    """Markdown table: coverage and popularity percentile at ``k`` per model and mode."""
    models = sorted({m for mode in metrics.values() for m in mode}, key=_model_order)
    lines = [
        f"| model | all coverage@{k} | all popularity pct@{k} | novel coverage@{k} "
        f"| novel popularity pct@{k} |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in models:
        cells = []
        for mode in ("all", "novel"):
            row = metrics.get(mode, {}).get(m, {})
            for name in ("coverage", "pop_percentile"):
                v = row.get(f"{name}@{k}")
                cells.append("—" if v is None else f"{v:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def segment_table(metrics: dict[str, dict[str, dict[str, float]]], k: int) -> str:
    """Markdown table: Recall@``k`` per shopper segment (purchase sessions before the cut)."""
    models = sorted({m for mode in metrics.values() for m in mode}, key=_model_order)
    segs = ("new", "occasional", "frequent")
    head = [f"{mode} {seg}" for mode in ("all", "novel") for seg in segs]
    lines = ["| model | " + " | ".join(head) + " |", "|" + " --- |" * (1 + len(head))]
    counts = []
    for mode in ("all", "novel"):
        first = next(iter(metrics.get(mode, {}).values()), {})
        counts += [f"{int(first.get(f'users:{seg}', 0))}" for seg in segs]
    lines.append("| shoppers | " + " | ".join(counts) + " |")
    for m in models:
        cells = []
        for mode in ("all", "novel"):
            row = metrics.get(mode, {}).get(m, {})
            for seg in segs:
                v = row.get(f"recall@{k}:{seg}")
                cells.append("—" if v is None else f"{v:.4f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _blend_plot(trials: list[dict[str, object]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    rep = [t for t in trials if t.get("step") == "repeat"]
    keys = sorted({(float(str(t["half_life"])), float(str(t.get("exponent", 0)))) for t in rep})
    for hl, ex in keys:
        pts = [
            t
            for t in rep
            if (float(str(t["half_life"])), float(str(t.get("exponent", 0)))) == (hl, ex)
        ]
        ax.plot(
            [float(str(t["repeat_weight"])) for t in pts],
            [float(str(t["recall@20"])) for t in pts],
            marker="o",
            markersize=3,
            label=f"half-life {hl:g} d, item exponent {ex:g}",
        )
    ax.set_xlabel("buy-again weight")
    ax.set_ylabel("validation Recall@20 (all)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} ms"


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
        k20 = 20 if 20 in ks else ks[0]
        lines += ["![recall by model](plots/recall_by_model.png)", ""]
        lines += [
            f"### Every model against every baseline, K from {ks[0]} to {ks[-1]}",
            "",
            "![recall and NDCG by K](plots/recall_by_k.png)",
            "",
            f"### Catalog coverage and popularity bias at K = {k20}",
            "",
            "Popularity percentile: mean share of the recommendable catalog that was bought by "
            "fewer shoppers than the recommended item (0.5 = typical item, 1 = the best seller).",
            "",
            quality_table(manifest.metrics, k20),
            "",
            f"### Recall@{k20} per shopper segment",
            "",
            "Segments by purchase sessions before the cut: new 0-1, occasional 2-4, "
            "frequent 5 or more.",
            "",
            segment_table(manifest.metrics, k20),
            "",
        ]
    if trials:
        _blend_plot(trials, plots / "blend_search.png")
        lines += [
            "## Blend chosen on the validation cut",
            "",
            f"ALS factors {manifest.als.factors}; hybrid {manifest.hybrid.model_dump()}; "
            f"trend half-life {manifest.config['popularity']['half_life_days']:g} days.",
            "",
            "![blend search](plots/blend_search.png)",
            "",
        ]
        val = ev.validation_recall if ev is not None else {}
        if val:
            scores = ", ".join(f"{mode} {v:.4f}" for mode, v in sorted(val.items()))
            lines += [f"Recall@20 of this blend on the validation sample: {scores}.", ""]
    lines += ["## Indexes and export", ""]
    indexes = [("ALS", manifest.als.index)]
    if manifest.two_tower is not None:
        indexes.append(("two-tower", manifest.two_tower.index))
    for name, info in indexes:
        lines.append(
            f"- {name} index: {info.kind}, recall@20 vs exact on held-out shoppers "
            f"{info.recall_at_20:.4f}; p99 search {_ms(info.p99_search_ms)} "
            f"(exact {_ms(info.exact_p99_search_ms)}); {info.reason or 'no reason recorded'}"
        )
    if manifest.two_tower is not None:
        lines.append(f"- ONNX parity max abs diff {manifest.two_tower.parity_max_abs_diff:.2e}")
    for name, ii in manifest.item_item.items():
        lines.append(f"- {name}: item-item matrix, {ii.nnz} weights (top {ii.top_k} per item)")
    lines += ["", "## Timings (seconds)", ""]
    lines += [f"- {k}: {v:.1f}" for k, v in manifest.timings_seconds.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    (bundle_dir / "report.md").write_text("\n".join(lines) + "\n")

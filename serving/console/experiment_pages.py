"""The experiment readout page: the API's GetExperimentReport for one experiment and window,
shown as tables (balance and sample-ratio check, effects, guardrails) and an SVG chart."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

# The report files' own number formats, so the page reads exactly like report.md.
from experiments.render import format_interval, format_number, format_percent
from fairshelf.errors import FairshelfError
from serving.console.experiment_charts import effect_chart, path_chart
from serving.console.routes import ConsolePages
from serving.console.session import Session
from serving.errors import public_field, public_message, status_for
from serving.service import CallContext


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    """Register the experiment readout page on ``router``."""

    @router.get("/experiments")
    def experiments(request: Request) -> Response:
        def build(session: Session, call: CallContext) -> Response:
            q = request.query_params
            name = (q.get("name") or "").strip() or pages.service.experiment_name
            since, until = (q.get("since") or "").strip(), (q.get("until") or "").strip()
            context: dict[str, Any] = {
                "name": name, "since": since, "until": until,
                "configured": pages.service.experiment_name,
                "num": format_number, "pct": format_percent, "interval": format_interval,
            }  # fmt: skip
            try:
                # The API's own operation: the same readout, authorisation and metrics.
                report = pages.service.experiment_report(call, name, since or None, until or None)
            except FairshelfError as exc:
                # An unknown experiment or an empty window: the message beside the form.
                status = status_for(exc)
                return pages.render(
                    request, "experiments.html", session, status=status.http_status,
                    active="experiments", report=None, error=public_message(exc),
                    error_field=public_field(exc), **context,
                )  # fmt: skip
            readout = report.report
            chart = effect_chart(
                readout["metrics"],
                f"Relative effect against {readout['control']} per metric, "
                "with the 95% and always-valid intervals",
            )
            labels = {m["metric"]: m["label"] for m in readout["metrics"]}
            paths = []
            for metric, variant in dict.fromkeys(
                (p["metric"], p["variant"]) for p in readout["path"]
            ):
                label = f"{labels.get(metric, metric)} ({variant} - {readout['control']})"
                points = [
                    p for p in readout["path"] if p["metric"] == metric and p["variant"] == variant
                ]
                paths.append((label, path_chart(points, f"Effect over time: {label}")))
            return pages.render(
                request, "experiments.html", session, active="experiments", report=readout,
                chart=chart, paths=paths, error=None, error_field=None, **context,
            )  # fmt: skip

        return pages.page(request, build)

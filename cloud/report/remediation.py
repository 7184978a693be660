"""The month's remediation in the report: actions, how many brought the camera back, and how
long camera problems lasted with and without a remediation."""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.i18n import Texts
from cloud.problems.tables import metadata as problems_metadata
from cloud.problems.tables import problems_table
from cloud.remediation.history import actions_table, metadata
from cloud.statedb import create_tables
from pantau.core.units import NS_PER_S


@dataclass(frozen=True)
class RemediationSummary:
    """Counts and times of one month (every district)."""

    actions: int
    automatic: int
    manual: int
    answered: int
    came_back: int  # done, and the camera answered afterwards
    median_recovery_s: float | None  # from the action's start to the camera's first answer
    problems_with: int  # camera problems resolved this month that had an action
    median_with_s: float | None  # their duration (opened to resolved)
    problems_without: int
    median_without_s: float | None

    @property
    def success_rate(self) -> float | None:
        """Share of answered actions after which the camera came back."""
        return self.came_back / self.answered if self.answered else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def remediation_summary(engine: sa.Engine, start_ns: int, end_ns: int) -> RemediationSummary:
    """The summary of actions issued, and camera problems resolved, in ``[start_ns, end_ns)``."""
    # A deployment that never sent a command (or ran the problems service) has no table yet.
    create_tables(engine, metadata, problems_metadata)
    a, p = actions_table, problems_table
    with engine.connect() as db:
        actions = list(
            db.execute(a.select().where(a.c.issued_ns >= start_ns, a.c.issued_ns < end_ns))
        )
        resolved = list(
            db.execute(
                sa.select(p.c.id, p.c.since_ns, p.c.resolved_ns).where(
                    p.c.rule == "camera", p.c.resolved_ns >= start_ns, p.c.resolved_ns < end_ns
                )
            )
        )
        acted = {
            int(row[0])
            for row in db.execute(sa.select(a.c.problem_id).where(a.c.problem_id.is_not(None)))
        }
    answered = [r for r in actions if r.result is not None]
    back = [r for r in answered if r.result == "done" and r.up_after]
    with_s = [(r.resolved_ns - r.since_ns) / NS_PER_S for r in resolved if r.id in acted]
    without_s = [(r.resolved_ns - r.since_ns) / NS_PER_S for r in resolved if r.id not in acted]
    return RemediationSummary(
        actions=len(actions),
        automatic=sum(1 for r in actions if r.trigger == "policy"),
        manual=sum(1 for r in actions if r.trigger != "policy"),
        answered=len(answered),
        came_back=len(back),
        median_recovery_s=_median([float(r.recovery_s) for r in back if r.recovery_s is not None]),
        problems_with=len(with_s),
        median_with_s=_median(with_s),
        problems_without=len(without_s),
        median_without_s=_median(without_s),
    )


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def remediation_html(summary: RemediationSummary | None, t: Texts) -> str:
    """The report's remediation section (empty when the report has none)."""
    if summary is None:
        return ""
    _ = t._
    rate = summary.success_rate
    rows = [
        (_("actions (automatic / manual)"), f"{summary.actions} ({summary.automatic} / "
         f"{summary.manual})"),
        (_("camera back after the action"), f"{summary.came_back} / {summary.answered}"
         + (f" ({rate:.0%})" if rate is not None else "")),
        (_("median time to recovery after an action"), _minutes(summary.median_recovery_s)),
        (_("camera problems with remediation: median duration"),
         f"{_minutes(summary.median_with_s)} ({summary.problems_with})"),
        (_("camera problems without remediation: median duration"),
         f"{_minutes(summary.median_without_s)} ({summary.problems_without})"),
    ]  # fmt: skip
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f"<h2>{html.escape(_('Remediation (power-cycle, reboot)'))}</h2><dl>{items}</dl>"

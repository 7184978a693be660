"""The month's remediation in the report: actions, how many brought the camera back, and how
long camera problems lasted with and without a remediation. The summary keeps the month's rows
(a month holds tens to hundreds), so a district-scoped report is the same summary ``within``
the reader's districts."""

from __future__ import annotations

import html
import statistics
from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa

from cloud.i18n import Texts
from cloud.problems.tables import metadata as problems_metadata
from cloud.problems.tables import problems_table
from cloud.remediation.history import actions_table, metadata
from cloud.statedb import create_tables
from pantau.core.units import NS_PER_S


@dataclass(frozen=True, slots=True)
class ActionFact:
    """One action issued in the month."""

    district: str
    automatic: bool
    answered: bool
    came_back: bool  # done, and the camera answered afterwards
    recovery_s: float | None


@dataclass(frozen=True, slots=True)
class ResolvedFact:
    """One camera problem resolved in the month: how long it lasted, whether it was acted on."""

    district: str
    duration_s: float
    acted: bool


@dataclass(frozen=True)
class RemediationSummary:
    """Counts and times of one month, of the districts its rows come from."""

    action_facts: tuple[ActionFact, ...]
    resolved_facts: tuple[ResolvedFact, ...]

    def within(self, districts: Collection[str] | None) -> RemediationSummary:
        """The summary of ``districts`` only (None: every district)."""
        if districts is None:
            return self
        return RemediationSummary(
            tuple(a for a in self.action_facts if a.district in districts),
            tuple(r for r in self.resolved_facts if r.district in districts),
        )

    @property
    def actions(self) -> int:
        """Actions issued."""
        return len(self.action_facts)

    @property
    def automatic(self) -> int:
        """Actions the policy issued."""
        return sum(1 for a in self.action_facts if a.automatic)

    @property
    def manual(self) -> int:
        """Actions a person issued."""
        return self.actions - self.automatic

    @property
    def answered(self) -> int:
        """Actions the agent answered."""
        return sum(1 for a in self.action_facts if a.answered)

    @property
    def came_back(self) -> int:
        """Actions after which the camera answered again."""
        return sum(1 for a in self.action_facts if a.came_back)

    @property
    def median_recovery_s(self) -> float | None:
        """From the action's start to the camera's first answer (of those that came back)."""
        back = [a.recovery_s for a in self.action_facts if a.came_back]
        return _median([s for s in back if s is not None])

    @property
    def problems_with(self) -> int:
        """Camera problems resolved this month that had an action."""
        return sum(1 for r in self.resolved_facts if r.acted)

    @property
    def median_with_s(self) -> float | None:
        """Their median duration (opened to resolved)."""
        return _median([r.duration_s for r in self.resolved_facts if r.acted])

    @property
    def problems_without(self) -> int:
        """Camera problems resolved this month without an action."""
        return sum(1 for r in self.resolved_facts if not r.acted)

    @property
    def median_without_s(self) -> float | None:
        """Their median duration."""
        return _median([r.duration_s for r in self.resolved_facts if not r.acted])

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
                sa.select(p.c.id, p.c.district, p.c.since_ns, p.c.resolved_ns).where(
                    p.c.rule == "camera", p.c.resolved_ns >= start_ns, p.c.resolved_ns < end_ns
                )
            )
        )
        acted = {
            int(row[0])
            for row in db.execute(sa.select(a.c.problem_id).where(a.c.problem_id.is_not(None)))
        }
    return RemediationSummary(
        tuple(
            ActionFact(
                district=str(r.district),
                automatic=r.trigger == "policy",
                answered=r.result is not None,
                came_back=r.result == "done" and bool(r.up_after),
                recovery_s=None if r.recovery_s is None else float(r.recovery_s),
            )
            for r in actions
        ),
        tuple(
            ResolvedFact(
                district=str(r.district),
                duration_s=(r.resolved_ns - r.since_ns) / NS_PER_S,
                acted=int(r.id) in acted,
            )
            for r in resolved
        ),
    )


def remediation_json(summary: RemediationSummary | None) -> dict[str, object] | None:
    """The section's figures for the report's JSON (None when the report has none)."""
    if summary is None:
        return None
    return {
        "actions": summary.actions,
        "automatic": summary.automatic,
        "manual": summary.manual,
        "answered": summary.answered,
        "came_back": summary.came_back,
        "success_rate": summary.success_rate,
        "median_recovery_s": summary.median_recovery_s,
        "problems_with": summary.problems_with,
        "median_with_s": summary.median_with_s,
        "problems_without": summary.problems_without,
        "median_without_s": summary.median_without_s,
    }


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

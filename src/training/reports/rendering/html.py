"""Complete, self-contained HTML for each report, ready for the PDF renderer.

Semantic markup is what makes the tagged PDF accessible: ``lang``, one ``<h1>``, ``<h2>``
sections, tables with captions and ``<th scope="col">``, and the chart as an ``<img>`` whose
alt text tells the levels in words. All CSS is inline and the only image is a ``data:`` URI;
the renderer refuses any other URL. Every dynamic string passes through ``html.escape``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from html import escape
from typing import Final

from training.reports.domain.effectiveness import (
    LARGE,
    MEDIUM,
    MIN_GROUP,
    SMALL,
    SkillChange,
    SuppressedGroup,
)
from training.reports.rendering.documents import (
    LEVELS,
    CohortReport,
    EffectivenessReport,
    LevelDistribution,
)

LANG: Final = "en"
MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
NOT_AVAILABLE: Final = "n/a"
NUM: Final = ' class="num"'

# Margin boxes do not inherit the body's font, so the font is set on @page as well as html.
STYLE: Final = """
@page {
  size: A4;
  margin: 18mm 17mm 20mm 17mm;
  font-family: "DejaVu Sans", "Noto Sans CJK SC", sans-serif;
  font-size: 8pt;
  color: #404040;
  @bottom-left { content: string(report-title); }
  @bottom-right { content: "Page " counter(page) " of " counter(pages); }
}
html { font-family: "DejaVu Sans", "Noto Sans CJK SC", sans-serif; font-size: 9.5pt;
       line-height: 1.4;
       color: #1a1a1a; }
body { margin: 0; }
h1 { font-size: 17pt; line-height: 1.2; margin: 0 0 3mm; string-set: report-title content(); }
h2 { font-size: 13pt; margin: 6mm 0 2mm; break-after: avoid; }
p { margin: 0 0 2mm; }
.new-page { break-before: page; }
.new-page > h2:first-child { margin-top: 0; }
dl.facts { display: grid; grid-template-columns: 38mm auto; margin: 0 0 4mm; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
p.chart { margin: 2mm 0 3mm; }
p.chart img { width: 100%; }
table { width: 100%; border-collapse: collapse; margin: 0 0 4mm; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: 0 0 1.5mm; }
thead { display: table-header-group; }
tr { break-inside: avoid; }
th, td { text-align: left; vertical-align: top; padding: 1.1mm 2mm;
         border-bottom: 0.5pt solid #8c8c8c; }
thead th { background: #e8e8e8; border-bottom: 1pt solid #1a1a1a; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.suppressed { font-style: italic; }
ul.changes li { margin: 0 0 1.5mm; }
.note { font-size: 8.5pt; color: #333333; }
"""


# -- formatting ------------------------------------------------------------------------------


def e(value: object) -> str:
    """Escape any dynamic value for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def format_date(value: date, *, short: bool = False) -> str:
    month = MONTHS[value.month - 1]
    return f"{value.day} {month[:3] if short else month} {value.year}"


def format_datetime(value: datetime, *, short: bool = False) -> str:
    zone = value.tzname() or ""
    return f"{format_date(value, short=short)}, {value:%H:%M} {zone}".rstrip()


def format_window(window: tuple[date, date]) -> str:
    return f"{format_date(window[0])} to {format_date(window[1])}"


def format_minutes(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def format_percent(rate: float | None) -> str:
    """A 0..1 rate as a whole percentage."""
    return NOT_AVAILABLE if rate is None else f"{rate * 100:.0f}%"


def format_optional(value: float | None, digits: int) -> str:
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def format_signed(value: float, digits: int = 2) -> str:
    text = f"{value:+.{digits}f}"
    return text.replace("-", "\u2212")  # a real minus sign


# -- building blocks -------------------------------------------------------------------------


def document(
    title: str, description: str, generated_at: datetime, body: str, *, lang: str = LANG
) -> str:
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{e(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(title)}</title>\n"
        f'<meta name="description" content="{e(description)}">\n'
        f'<meta name="dcterms.created" content="{e(generated_at.isoformat())}">\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def facts(items: Iterable[tuple[str, str | None]]) -> str:
    rows = "".join(
        f"<dt>{e(term)}</dt><dd>{e(value)}</dd>" for term, value in items if value is not None
    )
    return f'<dl class="facts">{rows}</dl>'


def table(
    caption: str,
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[str],
) -> str:
    """``headers`` are (label, numeric); ``rows`` are ready ``<tr>`` elements."""
    head = "".join(
        f'<th scope="col"{NUM if numeric else ""}>{e(label)}</th>' for label, numeric in headers
    )
    return (
        f"<table>\n<caption>{e(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{''.join(rows)}</tbody>\n</table>"
    )


def row(*cells: tuple[str, bool]) -> str:
    """A body row of (text, numeric) cells; the first cell is the row's header."""
    first, *rest = cells
    out = f'<th scope="row">{e(first[0])}</th>'
    out += "".join(f"<td{NUM if numeric else ''}>{e(text)}</td>" for text, numeric in rest)
    return f"<tr>{out}</tr>\n"


def suppressed_row(skill: str, reason: str, span: int) -> str:
    return (
        f'<tr><th scope="row">{e(skill)}</th>'
        f'<td class="suppressed" colspan="{span}">Not shown: {e(reason)}</td></tr>\n'
    )


# -- cohort ----------------------------------------------------------------------------------


def cohort_title(report: CohortReport) -> str:
    return f"Cohort report: {report.cohort_name}"


def cohort_html(report: CohortReport) -> str:
    at_risk = sum(1 for r in report.roster if r.at_risk)
    header = f"<h1>{e(cohort_title(report))}</h1>\n" + facts(
        [
            ("Organisation", report.tenant_name),
            ("Curriculum", report.curriculum_title),
            ("Window", format_window(report.window)),
            ("People", f"{len(report.roster)} enrolled, {at_risk} at risk"),
            ("Generated", format_datetime(report.generated_at)),
        ]
    )
    roster = (
        '<section aria-labelledby="roster">\n<h2 id="roster">Roster and progress</h2>\n'
        + table(
            "Progress by person",
            [("Name", False), ("Status", False), ("Complete", True), ("At risk", False)],
            (
                row(
                    (r.name, False),
                    (r.status, False),
                    (f"{r.percent_complete:.0f}%", True),
                    ("Yes" if r.at_risk else "No", False),
                )
                for r in report.roster
            ),
        )
        + "\n</section>\n"
    )
    sessions = (
        '<section aria-labelledby="sessions">\n<h2 id="sessions">Live sessions</h2>\n'
        '<p class="note">Attendance is the share of enrolled people who attended; '
        "interactions are comments, questions and reactions per minute; satisfaction is "
        f"the mean feedback rating from 1 to 5. {NOT_AVAILABLE}: not recorded yet.</p>\n"
        + table(
            "Attendance, interaction and satisfaction by session",
            [
                ("Session", False),
                ("Starts", True),
                ("Attendance", True),
                ("Interactions per minute", True),
                ("Satisfaction (1 to 5)", True),
            ],
            (
                row(
                    (s.title, False),
                    (format_datetime(s.starts_at, short=True), True),
                    (format_percent(s.attendance_rate), True),
                    (format_optional(s.interaction_index, 2), True),
                    (format_optional(s.content_satisfaction, 1), True),
                )
                for s in report.sessions
            ),
        )
        + "\n</section>\n"
    )
    headers = [("Skill", False), *((f"Level {level}", True) for level in LEVELS)]
    headers.append(("People", True))
    distribution_rows = []
    for entry in report.skill_distribution:
        if isinstance(entry, LevelDistribution):
            distribution_rows.append(
                row(
                    (entry.skill, False),
                    *((str(count), True) for count in entry.counts),
                    (str(entry.total), True),
                )
            )
        else:
            distribution_rows.append(suppressed_row(entry.skill, entry.reason, len(LEVELS) + 1))
    distribution = (
        '<section aria-labelledby="levels">\n<h2 id="levels">Skill levels in the cohort</h2>\n'
        f'<p class="note">Number of people at each level. A skill fewer than {MIN_GROUP} '
        "people have a level for is not shown, so that no one's level can be inferred.</p>\n"
        + table("People per level by skill", headers, distribution_rows)
        + "\n</section>"
    )
    return document(
        cohort_title(report),
        f"Progress, sessions and skill levels, {report.cohort_name}, {report.tenant_name}",
        report.generated_at,
        header + roster + sessions + distribution,
    )


# -- effectiveness ---------------------------------------------------------------------------


def effectiveness_title(report: EffectivenessReport) -> str:
    return f"Training effectiveness: {report.tenant_name}"


def _change_row(entry: SkillChange | SuppressedGroup) -> str:
    if isinstance(entry, SuppressedGroup):
        return suppressed_row(entry.skill, entry.reason, 6)
    return row(
        (entry.skill, False),
        (str(entry.n), True),
        (f"{entry.pre_mean:.2f}", True),
        (f"{entry.post_mean:.2f}", True),
        (format_signed(entry.mean_change), True),
        (
            format_signed(entry.effect_size) if entry.effect_size is not None else NOT_AVAILABLE,
            True,
        ),
        (entry.interpretation, False),
    )


def effectiveness_html(report: EffectivenessReport) -> str:
    header = f"<h1>{e(effectiveness_title(report))}</h1>\n" + facts(
        [
            ("Organisation", report.tenant_name),
            ("Period", format_window(report.period)),
            ("Generated", format_datetime(report.generated_at)),
        ]
    )
    changes = (
        '<section aria-labelledby="change">\n<h2 id="change">Skill change before and after '
        "training</h2>\n"
        "<p>Mean level of the people measured both before and after training, on the same "
        "calibrated scale, and the size of the change as Cohen's d.</p>\n"
        + table(
            "Change in level by skill",
            [
                ("Skill", False),
                ("People", True),
                ("Before", True),
                ("After", True),
                ("Change", True),
                ("Effect size d", True),
                ("Reading", False),
            ],
            (_change_row(entry) for entry in report.changes),
        )
        + "\n</section>\n"
    )
    completion = (
        '<section aria-labelledby="completion">\n<h2 id="completion">Completion</h2>\n'
        + table(
            "Completion by cohort or curriculum",
            [
                ("Cohort or curriculum", False),
                ("Enrolled", True),
                ("Completed", True),
                ("Rate", True),
            ],
            (
                row(
                    (c.label, False),
                    (str(c.enrolled), True),
                    (str(c.completed), True),
                    (format_percent(c.rate), True),
                )
                for c in report.completion_rates
            ),
        )
        + "\n</section>\n"
    )
    method = (
        '<section aria-labelledby="method">\n<h2 id="method">Method</h2>\n'
        '<p class="note">The effect size is Cohen\'s d<sub>av</sub> for paired measurements: '
        "the mean change divided by the average of the before and after standard deviations "
        "(Lakens 2013). Unlike d<sub>z</sub>, which divides by the spread of the changes, it "
        "does not grow with the correlation between before and after, so it can be read "
        "against the usual conventions. Those conventions are Cohen's rules of thumb, not "
        f"facts about the work: |d| of {SMALL} is called small, {MEDIUM} medium and "
        f"{LARGE} large, less than {SMALL} negligible. A negative d is a decrease. "
        f"{NOT_AVAILABLE}: everyone had the same level before and after, so d is "
        "undefined.</p>\n"
        f'<p class="note">Skills fewer than {MIN_GROUP} people were measured on both '
        "occasions are not shown, so that no one's result can be inferred.</p>\n</section>"
    )
    return document(
        effectiveness_title(report),
        f"Pre/post skill change and completion, {report.tenant_name}",
        report.generated_at,
        header + changes + completion + method,
    )

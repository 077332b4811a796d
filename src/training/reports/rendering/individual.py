"""The individual report's HTML: a person's skill profile and training plan, written in the
language they chose (the building blocks and the style are ``html``'s)."""

from __future__ import annotations

from datetime import date

from training.core.web.i18n import date_in, translator
from training.reports.rendering.charts import (
    MAX_LEVEL,
    ChartEntry,
    number,
    skill_profile_alt,
    skill_profile_svg,
    svg_data_uri,
)
from training.reports.rendering.documents import IndividualReport
from training.reports.rendering.html import LANG, document, e, facts, format_date, row, table

# -- individual ------------------------------------------------------------------------------
#
# Written in the person's language (their profile): the texts go through the pages'
# catalogues (``_``), and dates and durations are written as that language writes them.


def individual_title(report: IndividualReport) -> str:
    _ = translator(report.language)
    return _("Skill profile and training plan: %(name)s") % {"name": report.member_name}


def _minutes_in(language: str, minutes: int) -> str:
    _ = translator(language)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return _("%(minutes)s min") % {"minutes": rest}
    if not rest:
        return _("%(hours)s h") % {"hours": hours}
    return _("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": rest}


def _date(language: str, value: date, *, short: bool = False) -> str:
    """English as the reports always wrote dates (14 March 2025); other languages as Babel
    writes them for that language."""
    if language == LANG:
        return format_date(value, short=short)
    return date_in(language, value, "medium" if short else "long")


def _due(language: str, due: date | None) -> str:
    return _date(language, due, short=True) if due else translator(language)("no date")


def individual_html(report: IndividualReport) -> str:
    _ = translator(report.language)
    language = report.language
    # Outside the f-strings below, where the catalogues' extraction finds them.
    headings = {
        "profile": _("Skill profile"),
        "plan": _("Training plan"),
        "changes": _("What changed since the last plan"),
        "reading": _("How to read this report"),
    }
    entries = [
        ChartEntry(row.skill, row.level, row.se_levels, row.target) for row in report.profile
    ]
    version = str(report.plan_version)
    if report.previous_plan_version is not None:
        version = _("%(version)s (replaces version %(previous)s)") % {
            "version": report.plan_version,
            "previous": report.previous_plan_version,
        }
    generated = report.generated_at
    header = f"<h1>{e(individual_title(report))}</h1>\n" + facts(
        [
            (_("Organisation"), report.tenant_name),
            (_("Job title"), report.job_title),
            (_("Team"), report.team),
            (_("Plan version"), version),
            (_("Generated"), f"{_date(language, generated.date())}, {generated:%H:%M %Z}"),
        ]
    )
    below = [r for r in report.profile if r.gap]
    summary = _(
        "%(skills)s skills on the level scale 0 to %(max)s; %(below)s below target. Bars show "
        "the current level, black lines the 95%% interval of the level (1.96 standard errors "
        "either side) and diamonds the target."
    ) % {"skills": len(report.profile), "max": MAX_LEVEL, "below": len(below)}
    profile = (
        '<section aria-labelledby="profile">\n'
        f'<h2 id="profile">{e(headings["profile"])}</h2>\n'
        f"<p>{e(summary)}</p>\n"
        f'<p class="chart"><img src="{svg_data_uri(skill_profile_svg(entries))}" '
        f'alt="{e(skill_profile_alt(entries))}"></p>\n'
        + table(
            _("Level, uncertainty and target by skill"),
            [
                (_("Skill"), False),
                (_("Level"), True),
                (_("SE (levels)"), True),
                (_("95%% interval") % {}, True),
                (_("Target"), True),
                (_("Gap"), True),
            ],
            (
                row(
                    (r.skill, False),
                    (str(r.level), True),
                    (f"{r.se_levels:.2f}", True),
                    (
                        _("%(low)s to %(high)s")
                        % {"low": number(c.interval[0]), "high": number(c.interval[1])},
                        True,
                    ),
                    (str(r.target) if r.target is not None else _("none"), True),
                    (str(r.gap) if r.gap is not None else _("n/a"), True),
                )
                for r, c in zip(report.profile, entries, strict=True)
            ),
        )
        + "\n</section>\n"
    )
    total = sum(item.minutes for item in report.plan)
    plan_summary = _(
        "%(modules)s modules, %(time)s in total, in the order to take them. Each says which "
        "skill gap it works on."
    ) % {"modules": len(report.plan), "time": _minutes_in(language, total)}
    plan = (
        '<section class="new-page" aria-labelledby="plan">\n'
        f'<h2 id="plan">{e(headings["plan"])}</h2>\n'
        f"<p>{e(plan_summary)}</p>\n"
        + table(
            _("Training plan, version %(version)s") % {"version": report.plan_version},
            [
                (_("Step"), True),
                (_("Module"), False),
                (_("Time"), True),
                (_("Due"), True),
                (_("Why"), False),
            ],
            (
                "<tr>"
                f'<td class="num">{item.order}</td>'
                f'<th scope="row">{e(item.title)}</th>'
                f'<td class="num">{e(_minutes_in(language, item.minutes))}</td>'
                f'<td class="num">{e(_due(language, item.due_date))}</td>'
                f"<td>{e(item.reason)}</td>"
                "</tr>\n"
                for item in report.plan
            ),
        )
        + "\n</section>\n"
    )
    versions = {"version": report.plan_version, "previous": report.previous_plan_version}
    if report.previous_plan_version is None:
        first = _("This is the first plan, so there is nothing to compare it with.")
        changed = f"<p>{e(first)}</p>"
    elif not report.changes:
        same = _("Version %(version)s has the same modules as version %(previous)s.") % versions
        changed = f"<p>{e(same)}</p>"
    else:
        replaces = _("Version %(version)s replaces version %(previous)s:") % versions
        changed = (
            f'<p>{e(replaces)}</p>\n<ul class="changes">'
            + "".join(f"<li>{e(line)}</li>" for line in report.changes)
            + "</ul>"
        )
    reading = (
        _(
            "Levels come from adaptive assessments and reviewers' evidence, combined. Each is an "
            "estimate: the standard error (SE) says how far it may be off, and the 95%% interval "
            "is the range the true level lies in with 95%% confidence. A gap is the number of "
            "levels between the current level and the target. The plan is rebuilt whenever new "
            "evidence arrives; the changes above list what the latest evidence moved."
        )
        % {}
    )
    changes = (
        '<section class="new-page" aria-labelledby="changes">\n'
        f'<h2 id="changes">{e(headings["changes"])}</h2>\n'
        f"{changed}\n</section>\n"
        '<section aria-labelledby="reading">\n'
        f'<h2 id="reading">{e(headings["reading"])}</h2>\n'
        f'<p class="note">{e(reading)}</p>\n</section>'
    )
    description = _("Skill profile and training plan for %(name)s, %(organisation)s") % {
        "name": report.member_name,
        "organisation": report.tenant_name,
    }
    return document(
        individual_title(report),
        description,
        report.generated_at,
        header + profile + plan + changes,
        lang=language,
    )

"""PDF reports: pure data in, PDF bytes out (no database, no HTTP).

The callers build the report data (``documents``) from read models; ``renderer`` turns it
into a tagged PDF/UA-1 document, fetching nothing but ``data:`` URLs.
"""

from training.reports.rendering.charts import ChartEntry, skill_profile_svg, svg_data_uri
from training.reports.rendering.documents import (
    CohortReport,
    CompletionRate,
    EffectivenessReport,
    IndividualReport,
    LevelDistribution,
    PlanItem,
    ProfileRow,
    RosterRow,
    SessionRow,
    level_distribution,
)
from training.reports.rendering.renderer import (
    BlockedResourceError,
    checksum,
    render_cohort,
    render_document,
    render_effectiveness,
    render_individual,
    render_pdf,
)

__all__ = [
    "BlockedResourceError",
    "ChartEntry",
    "CohortReport",
    "CompletionRate",
    "EffectivenessReport",
    "IndividualReport",
    "LevelDistribution",
    "PlanItem",
    "ProfileRow",
    "RosterRow",
    "SessionRow",
    "checksum",
    "level_distribution",
    "render_cohort",
    "render_document",
    "render_effectiveness",
    "render_individual",
    "render_pdf",
    "skill_profile_svg",
    "svg_data_uri",
]

"""An engineer's skill profile: assessment results and reviewers' evidence, combined.

Each source is a measurement of ability θ with a standard error. An assessment brings its
own (θ, SE). A code or project review records an observed level; it counts as θ at the
middle of that level's band with ``EVIDENCE_SE`` = 1.0 logit, a deliberately larger error
than an adaptive assessment's (≤ 0.45), so one review weighs about a fifth of an assessment.
Sources combine by inverse-variance weighting (the precision-weighted mean, the standard
way to pool independent measurements), which also gives the combined SE:

    θ = Σ(θᵢ / SEᵢ²) / Σ(1 / SEᵢ²)        SE = 1 / √Σ(1 / SEᵢ²)

Only the latest assessment of a skill counts (it supersedes earlier ones), and evidence
counts for ``EVIDENCE_MONTHS`` months.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from training.assessments.domain.scoring import CutScores

EVIDENCE_SE = 1.0
EVIDENCE_MONTHS = 12
BAND_EDGE_OFFSET = 0.5  # levels 1 and 7 are open-ended: use half a logit beyond the cut


@dataclass(frozen=True, slots=True)
class Measurement:
    source: str  # "assessment", "code_review" or "project_review"
    source_id: str
    theta: float
    se: float
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileEntry:
    skill: str
    level: int
    theta: float
    se: float
    sources: tuple[Measurement, ...]


def theta_for_level(level: int, cut_scores: CutScores) -> float:
    """The middle of a level's band on the θ scale."""
    cuts = cut_scores.thresholds
    if level <= 1:
        return cuts[0] - BAND_EDGE_OFFSET
    if level >= len(cuts) + 1:
        return cuts[-1] + BAND_EDGE_OFFSET
    return (cuts[level - 2] + cuts[level - 1]) / 2


def evidence_measurement(
    source: str, source_id: str, level: int, recorded_at: datetime, cut_scores: CutScores
) -> Measurement:
    return Measurement(
        source, source_id, theta_for_level(level, cut_scores), EVIDENCE_SE, recorded_at
    )


def combine(
    skill: str, measurements: Sequence[Measurement], as_of: datetime, cut_scores: CutScores
) -> ProfileEntry | None:
    """The skill's profile entry as known at ``as_of``; None when nothing was known then."""
    known = [m for m in measurements if m.recorded_at <= as_of]
    assessments = [m for m in known if m.source == "assessment"]
    horizon = as_of - timedelta(days=30 * EVIDENCE_MONTHS)
    evidence = [m for m in known if m.source != "assessment" and m.recorded_at >= horizon]
    used = ([max(assessments, key=lambda m: m.recorded_at)] if assessments else []) + evidence
    if not used:
        return None
    weights = [1 / (m.se**2) for m in used]
    theta = sum(w * m.theta for w, m in zip(weights, used, strict=True)) / sum(weights)
    se = 1 / math.sqrt(sum(weights))
    ordered = tuple(sorted(used, key=lambda m: m.recorded_at))
    return ProfileEntry(skill, cut_scores.level_for(theta), round(theta, 4), round(se, 4), ordered)

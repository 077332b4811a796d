"""The skill-profile chart: plain SVG, no scripts, no external references.

One horizontal bar per skill on the level scale 0..7, with the 95 % interval of the level
(±1.96 standard errors, the SE already expressed in levels by the caller) as an error bar and
the target level as a diamond. Colours come from the Okabe-Ito palette, which stays
distinguishable under the common colour-vision deficiencies, and nothing is told by colour
alone: the target is a shape, the interval a capped line, and a legend names all three.

The chart goes into the PDF as ``<img src="data:image/svg+xml;base64,..." alt="...">``:
WeasyPrint carries an ``<img>``'s alt text into the tagged PDF (/Figure with /Alt), while an
inline ``<svg>`` loses it.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

MAX_LEVEL: Final = 7
Z_95: Final = 1.96

BAR_COLOUR: Final = "#0072B2"  # Okabe-Ito blue, 5.0:1 against white
TARGET_COLOUR: Final = "#D55E00"  # Okabe-Ito vermillion, 4.0:1 against white
INTERVAL_COLOUR: Final = "#000000"
GRID_COLOUR: Final = "#BDBDBD"
TEXT_COLOUR: Final = "#1A1A1A"
FONT: Final = "DejaVu Sans, sans-serif"

WIDTH: Final = 680
LABEL_WIDTH: Final = 190
PLOT_LEFT: Final = LABEL_WIDTH + 10
PLOT_RIGHT: Final = WIDTH - 20
ROW_HEIGHT: Final = 22
BAR_HEIGHT: Final = 12
TOP: Final = 40  # room for the legend
BOTTOM: Final = 42  # room for the axis
MAX_LABEL_CHARS: Final = 28


@dataclass(frozen=True, slots=True)
class ChartEntry:
    skill_name: str
    level: float  # 0..7
    se_levels: float  # standard error of the level, in levels
    target_level: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.level) and 0 <= self.level <= MAX_LEVEL):
            raise ValueError(f"level must be within 0..{MAX_LEVEL}: {self.level!r}")
        if not (math.isfinite(self.se_levels) and self.se_levels >= 0):
            raise ValueError(f"se_levels must be a finite number >= 0: {self.se_levels!r}")
        if self.target_level is not None and not 0 <= self.target_level <= MAX_LEVEL:
            raise ValueError(f"target_level must be within 0..{MAX_LEVEL}")

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % interval of the level, clipped to the scale."""
        half = Z_95 * self.se_levels
        return max(0.0, self.level - half), min(float(MAX_LEVEL), self.level + half)


def number(value: float) -> str:
    """4 for a whole level, 4.3 otherwise."""
    rounded = round(value, 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def describe_entry(entry: ChartEntry) -> str:
    low, high = entry.interval
    text = f"{entry.skill_name}: level {number(entry.level)}"
    text += f" (95% interval {number(low)} to {number(high)})"
    if entry.target_level is not None:
        text += f", target {entry.target_level}"
    return text


def skill_profile_alt(entries: Sequence[ChartEntry]) -> str:
    """The chart in words, for the image's alt text."""
    if not entries:
        return "Skill profile chart: no skill has been assessed yet."
    below = sum(1 for e in entries if e.target_level is not None and e.level < e.target_level)
    parts = [
        f"Horizontal bar chart of {len(entries)} skill levels on a scale of 0 to {MAX_LEVEL}, "
        f"{below} below target.",
    ]
    parts.extend(
        f"{entry.skill_name}: level {number(entry.level)}"
        + (f", target {entry.target_level}." if entry.target_level is not None else ".")
        for entry in entries
    )
    return " ".join(parts)


def _x(level: float) -> float:
    return PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) * level / MAX_LEVEL


def _label(name: str) -> str:
    return name if len(name) <= MAX_LABEL_CHARS else name[: MAX_LABEL_CHARS - 1] + "…"


def _diamond(x: float, y: float, r: float) -> str:
    points = f"{x:.1f},{y - r:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r:.1f} {x - r:.1f},{y:.1f}"
    return f'<polygon points="{points}" fill="{TARGET_COLOUR}" stroke="#FFFFFF" stroke-width="1"/>'


def _legend() -> list[str]:
    y = 16
    x = PLOT_LEFT
    return [
        '<g class="legend">',
        f'<rect x="{x}" y="{y - 6}" width="18" height="12" fill="{BAR_COLOUR}"/>',
        f'<text x="{x + 24}" y="{y + 4}">Current level</text>',
        f'<line x1="{x + 140}" y1="{y}" x2="{x + 166}" y2="{y}" stroke="{INTERVAL_COLOUR}" '
        'stroke-width="1.5"/>',
        f'<line x1="{x + 140}" y1="{y - 5}" x2="{x + 140}" y2="{y + 5}" '
        f'stroke="{INTERVAL_COLOUR}" stroke-width="1.5"/>',
        f'<line x1="{x + 166}" y1="{y - 5}" x2="{x + 166}" y2="{y + 5}" '
        f'stroke="{INTERVAL_COLOUR}" stroke-width="1.5"/>',
        f'<text x="{x + 172}" y="{y + 4}">95% interval</text>',
        _diamond(x + 290, y, 7),
        f'<text x="{x + 302}" y="{y + 4}">Target level</text>',
        "</g>",
    ]


def skill_profile_svg(entries: Sequence[ChartEntry]) -> str:
    """A standalone SVG document: bars 0..7 with 95 % intervals and target diamonds."""
    height = TOP + ROW_HEIGHT * max(len(entries), 1) + BOTTOM
    plot_bottom = TOP + ROW_HEIGHT * max(len(entries), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        f'font-family="{FONT}" font-size="12" fill="{TEXT_COLOUR}">',
        '<title id="chart-title">Skill profile: current level, 95% interval and target</title>',
        f'<desc id="chart-desc">{escape(skill_profile_alt(entries))}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#FFFFFF"/>',
        *_legend(),
    ]
    for level in range(MAX_LEVEL + 1):
        x = _x(level)
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{plot_bottom}" '
            f'stroke="{GRID_COLOUR}" stroke-width="{1 if level else 1.5}"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{plot_bottom + 16}" text-anchor="middle">{level}</text>')
    out.append(
        f'<text x="{(PLOT_LEFT + PLOT_RIGHT) / 2:.1f}" y="{plot_bottom + 34}" '
        f'text-anchor="middle">Level (0 to {MAX_LEVEL})</text>'
    )
    if not entries:
        out.append(
            f'<text x="{PLOT_LEFT + 10}" y="{TOP + ROW_HEIGHT / 2 + 4:.1f}">'
            "No skill has been assessed yet.</text>"
        )
    for row, entry in enumerate(entries):
        centre = TOP + ROW_HEIGHT * row + ROW_HEIGHT / 2
        low, high = entry.interval
        bar_end = _x(entry.level)
        out.append("<g>")
        out.append(f"<title>{escape(describe_entry(entry))}</title>")
        out.append(
            f'<text x="{LABEL_WIDTH}" y="{centre + 4:.1f}" text-anchor="end">'
            f"{escape(_label(entry.skill_name))}</text>"
        )
        out.append(
            f'<rect x="{PLOT_LEFT}" y="{centre - BAR_HEIGHT / 2:.1f}" '
            f'width="{bar_end - PLOT_LEFT:.1f}" height="{BAR_HEIGHT}" fill="{BAR_COLOUR}"/>'
        )
        if high > low:
            x_low, x_high = _x(low), _x(high)
            out.append(
                f'<line x1="{x_low:.1f}" y1="{centre:.1f}" x2="{x_high:.1f}" y2="{centre:.1f}" '
                f'stroke="{INTERVAL_COLOUR}" stroke-width="1.5"/>'
            )
            for x in (x_low, x_high):
                out.append(
                    f'<line x1="{x:.1f}" y1="{centre - 5:.1f}" x2="{x:.1f}" '
                    f'y2="{centre + 5:.1f}" stroke="{INTERVAL_COLOUR}" stroke-width="1.5"/>'
                )
        if entry.target_level is not None:
            out.append(_diamond(_x(entry.target_level), centre, 7))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")

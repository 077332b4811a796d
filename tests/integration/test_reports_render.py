"""The three PDF reports, rendered from sample data and read back with pypdf and PDFium.

Each sample report is rendered once per module (about half a second to a second each).
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject
from weasyprint.urls import FatalURLFetchingError

from training.reports.domain.effectiveness import SkillChange, SuppressedGroup
from training.reports.rendering import (
    BlockedResourceError,
    ChartEntry,
    CohortReport,
    EffectivenessReport,
    LevelDistribution,
    checksum,
    level_distribution,
    render_cohort,
    render_effectiveness,
    render_individual,
    render_pdf,
    skill_profile_svg,
    svg_data_uri,
)
from training.reports.rendering.individual import individual_html
from training.reports.rendering.samples import (
    cohort_report,
    effectiveness_report,
    individual_report,
)

A4_RATIO = 297 / 210
BAR_BLUE = (0, 114, 178)  # the chart's bar colour, #0072B2


def text_of(reader: PdfReader) -> str:
    """All pages' text with whitespace (and line wraps) collapsed to single spaces."""
    return " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())


def struct_elements(node: Any) -> Iterator[DictionaryObject]:
    """Every structure element under a node of the structure tree."""
    node = node.get_object()
    if not isinstance(node, DictionaryObject):
        return
    if "/S" in node:
        yield node
    kids = node.get("/K")
    if kids is None:
        return
    for kid in kids if isinstance(kids, ArrayObject) else [kids]:
        if isinstance(kid, DictionaryObject | IndirectObject):
            yield from struct_elements(kid)


@pytest.fixture(scope="module")
def individual_pdf() -> bytes:
    return render_individual(individual_report())


@pytest.fixture(scope="module")
def cohort_pdf() -> bytes:
    return render_cohort(cohort_report())


@pytest.fixture(scope="module")
def effectiveness_pdf() -> bytes:
    return render_effectiveness(effectiveness_report())


# -- individual ------------------------------------------------------------------------------


def test_the_individual_report_has_three_pages_and_says_what_the_data_says(
    individual_pdf: bytes,
) -> None:
    reader = PdfReader(io.BytesIO(individual_pdf))
    assert len(reader.pages) == 3
    text = text_of(reader)
    report = individual_report()
    for fact in (
        "Skill profile and training plan: Dana Whitfield",
        "Northwind Software GmbH",
        "Senior backend engineer",
        "Payments platform",
        "4 (replaces version 3)",
        "14 March 2025, 09:30 UTC",
        "12 skills on the level scale 0 to 7; 9 below target",
        "12 modules, 29 h 30 min in total",
        "What changed since the last plan",
        "Version 4 replaces version 3:",
    ):
        assert fact in text
    for row in report.profile:
        assert row.skill in text
    assert "Cloud networking 1 0.55 0 to 2.1 3 2" in text  # level, SE, interval, target, gap
    for item in report.plan:
        assert item.title in text
        assert item.reason in text
    for line in report.changes:
        assert line in text
    # Sections start on their own pages; the footer numbers them.
    pages = [" ".join((page.extract_text() or "").split()) for page in reader.pages]
    assert "Training plan" not in pages[0]
    assert pages[1].startswith("Training plan")
    assert pages[2].startswith("What changed since the last plan")
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of 3" in page


def test_the_pdf_is_tagged_with_language_and_title(individual_pdf: bytes) -> None:
    reader = PdfReader(io.BytesIO(individual_pdf))
    catalog = reader.trailer["/Root"]
    assert "/StructTreeRoot" in catalog
    assert catalog["/MarkInfo"]["/Marked"].value is True
    assert catalog["/Lang"] == "en"
    assert "/Metadata" in catalog  # XMP, which PDF/UA requires
    assert reader.metadata is not None
    assert reader.metadata.title == "Skill profile and training plan: Dana Whitfield"
    kinds = {str(element["/S"]) for element in struct_elements(catalog["/StructTreeRoot"])}
    assert {"/H1", "/H2", "/Table", "/TH", "/TD", "/Caption", "/Figure"} <= kinds


def test_the_chart_is_a_figure_with_alt_text_that_tells_the_levels(
    individual_pdf: bytes,
) -> None:
    reader = PdfReader(io.BytesIO(individual_pdf))
    figures = [
        element
        for element in struct_elements(reader.trailer["/Root"]["/StructTreeRoot"])
        if element["/S"] == "/Figure"
    ]
    assert len(figures) == 1
    alt = str(figures[0]["/Alt"])
    assert alt.startswith("Horizontal bar chart of 12 skill levels on a scale of 0 to 7")
    assert "Python: level 4, target 5." in alt
    assert "Cloud networking: level 1, target 3." in alt
    assert "Code review & mentoring: level 5, target 5." in alt


def test_page_one_renders_to_a_non_blank_a4_image_with_the_chart(
    individual_pdf: bytes, tmp_path: Path
) -> None:
    document = pdfium.PdfDocument(individual_pdf)
    try:
        image = document[0].render(scale=1.0).to_pil().convert("RGB")
    finally:
        document.close()
    path = tmp_path / "individual-page-1.png"
    image.save(path)
    assert path.stat().st_size > 10_000
    width, height = image.size
    assert (width, height) in {(595, 842), (596, 842)}  # A4 at 72 dpi
    assert abs(height / width - A4_RATIO) < 0.01
    colours = image.getcolors(maxcolors=width * height)
    assert colours is not None
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert white < 0.95 * width * height  # there is something on the page
    blue = sum(count for count, colour in colours if colour == BAR_BLUE)
    assert blue > 2_000  # the chart's bars were drawn


def test_names_are_escaped_not_interpreted() -> None:
    report = replace(
        individual_report(),
        member_name='<img src="https://example.invalid/x.png"> & Co',
        changes=("added '<b>k8s</b>': closes Kubernetes 2→3",),
    )
    html = individual_html(report)
    assert '<img src="https://example.invalid' not in html
    assert "&lt;img src=&quot;https://example.invalid/x.png&quot;&gt; &amp; Co" in html
    assert "&#x27;&lt;b&gt;k8s&lt;/b&gt;&#x27;" in html


def test_the_same_report_gives_the_same_bytes_with_a_fixed_source_date(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without HarfBuzz's subsetter, WeasyPrint's fontTools fallback stamps the font subsets
    # with the time unless SOURCE_DATE_EPOCH is set (ADR 0039).
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1741944600")
    first = render_individual(individual_report())
    second = render_individual(individual_report())
    assert checksum(first) == checksum(second)
    assert re.fullmatch(r"[0-9a-f]{64}", checksum(first))


# -- cohort ----------------------------------------------------------------------------------


def test_the_cohort_report_lists_people_sessions_and_suppresses_small_groups(
    cohort_pdf: bytes,
) -> None:
    reader = PdfReader(io.BytesIO(cohort_pdf))
    assert len(reader.pages) == 2
    text = text_of(reader)
    report = cohort_report()
    for fact in (
        "Cohort report: Platform engineering, spring 2025",
        "Kubernetes for backend engineers",
        "13 January 2025 to 25 April 2025",
        "14 enrolled, 3 at risk",
        "(erased) active 21% Yes",  # an erased person is shown as the caller names them
        "Grace O'Neill active 42% No",
        "Kick-off: how the cohort works 13 Jan 2025, 15:00 UTC 93% 1.21 4.4",
        "Wrap-up and next steps 17 Feb 2025, 15:00 UTC n/a n/a n/a",
        "Kubernetes 1 4 6 1 0 0 0 12",
        "Incident response Not shown: fewer than 5 people",
        "Go Not shown: fewer than 5 people",
    ):
        assert fact in text
    for person in report.roster:
        assert person.name in text
    assert "Page 2 of 2" in text


# -- effectiveness ---------------------------------------------------------------------------


def test_the_effectiveness_report_shows_effect_sizes_and_suppressed_groups(
    effectiveness_pdf: bytes,
) -> None:
    reader = PdfReader(io.BytesIO(effectiveness_pdf))
    assert len(reader.pages) == 1
    text = text_of(reader)
    # Kubernetes, 8 people: pre mean 2.125, post 2.875, both SDs √(2.875/7) = 0.6409,
    # d_av = 0.75 / 0.6409 = 1.17, large.
    assert "Kubernetes 8 2.12 2.88 +0.75 +1.17 large" in text
    # Observability, 5 people: pre 2 3 2 3 2 (SD 0.5477), post 2 3 3 3 2 (SD 0.5477),
    # d_av = 0.2 / 0.5477 = 0.37, small.
    assert "Observability 5 2.40 2.60 +0.20 +0.37 small" in text
    assert "Incident response Not shown: fewer than 5 people" in text
    assert "Platform engineering, spring 2025 14 9 64%" in text
    assert "Data modelling pilot 0 0 n/a" in text
    assert "Lakens 2013" in text
    assert "rules of thumb" in text


# -- no network ------------------------------------------------------------------------------

HEAD = '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title>'


@pytest.mark.parametrize(
    "html",
    [
        HEAD + '<link rel="stylesheet" href="https://example.invalid/x.css"></head>'
        "<body><h1>x</h1></body></html>",
        HEAD + '</head><body><h1>x</h1><img src="https://example.invalid/x.png" alt="x">'
        "</body></html>",
        HEAD + "<style>@import url('http://example.invalid/a.css');</style></head>"
        "<body><h1>x</h1></body></html>",
        HEAD + '</head><body><h1>x</h1><img src="file:///etc/hostname" alt="x"></body></html>',
    ],
    ids=["stylesheet", "image", "css-import", "local-file"],
)
def test_any_fetch_that_is_not_a_data_url_fails_the_render(html: str) -> None:
    with pytest.raises(BlockedResourceError, match="blocked fetch") as caught:
        render_pdf(html)
    assert isinstance(caught.value.__cause__, FatalURLFetchingError)


# -- data guards and the chart (no rendering) ------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def test_the_chart_is_well_formed_svg_with_titles_and_escaped_names() -> None:
    svg = skill_profile_svg(
        [
            ChartEntry("Python", 4, 0.31, 5),
            ChartEntry("C & <C++>", 0, 0.8, None),
            ChartEntry("Rust", 7, 0.5, 6),
        ]
    )
    root = ET.fromstring(svg)  # noqa: S314  # our own output, not untrusted input
    assert root.find(f"{SVG}title") is not None
    titles = [t.text for t in root.iter(f"{SVG}title")]
    assert "Python: level 4 (95% interval 3.4 to 4.6), target 5" in titles
    assert "C & <C++>: level 0 (95% interval 0 to 1.6)" in titles  # clipped at 0
    assert "Rust: level 7 (95% interval 6 to 7), target 6" in titles  # clipped at 7
    assert "C &amp; &lt;C++&gt;" in svg
    assert "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert svg_data_uri(svg).startswith("data:image/svg+xml;base64,")


def test_chart_entries_are_checked() -> None:
    with pytest.raises(ValueError, match="level"):
        ChartEntry("x", 8, 0.1, None)
    with pytest.raises(ValueError, match="se_levels"):
        ChartEntry("x", 3, -0.1, None)


def test_small_groups_cannot_reach_a_report() -> None:
    assert level_distribution("Go", [3, 4, 4, 5]) == SuppressedGroup("Go", "fewer than 5 people")
    shown = level_distribution("Go", [3, 4, 4, 5, 1])
    assert shown == LevelDistribution("Go", (1, 0, 1, 2, 1, 0, 0))
    cohort = cohort_report()
    with pytest.raises(ValueError, match="fewer than 5 people"):
        replace(cohort, skill_distribution=(LevelDistribution("Go", (0, 1, 1, 1, 1, 0, 0)),))
    effectiveness = effectiveness_report()
    with pytest.raises(ValueError, match="fewer than 5 people"):
        replace(
            effectiveness,
            changes=(SkillChange("Go", 4, 2.0, 3.0, 1.0, 1.2, "large"),),
        )


def test_report_times_must_carry_a_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        replace(individual_report(), generated_at=datetime(2025, 3, 14, 9, 30))
    with pytest.raises(ValueError, match="ends before"):
        EffectivenessReport(
            "t", (date(2025, 2, 1), date(2025, 1, 1)), (), (), datetime(2025, 3, 1, tzinfo=UTC)
        )
    assert isinstance(cohort_report(), CohortReport)


def test_the_service_renders_in_a_child_process_that_says_the_same() -> None:
    from training.infra.rendering import RenderingProcess
    from training.reports.supervisor import RENDERS

    renderer = RenderingProcess(RENDERS)
    try:
        pdf = renderer(individual_report())
        child = renderer.pid
        assert child is not None
        assert child != os.getpid()
    finally:
        renderer.close()
    assert renderer.pid is None
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert individual_report().member_name in text


def test_the_individual_report_is_written_in_the_persons_language_with_their_name() -> None:
    report = replace(individual_report("张伟"), language="zh-Hans")
    pdf = render_individual(report)
    reader = PdfReader(io.BytesIO(pdf))
    text = text_of(reader)
    assert "技能档案与培训计划\uff1a张伟" in text
    for heading in ("技能档案", "培训计划", "自上次计划以来的变化", "如何阅读本报告"):
        assert heading in text
    assert "2025年3月14日" in text
    assert reader.trailer["/Root"]["/Lang"] == "zh-Hans"
    assert reader.metadata is not None
    assert reader.metadata.title == "技能档案与培训计划\uff1a张伟"
    # The name renders in a font that has it (not as missing-glyph boxes): PDFium finds it.
    page = pdfium.PdfDocument(pdf)[0]
    assert "张伟" in page.get_textpage().get_text_range()


def test_a_chinese_name_in_an_english_report_renders_too() -> None:
    text = text_of(PdfReader(io.BytesIO(render_individual(individual_report("张伟")))))
    assert "Skill profile and training plan: 张伟" in text

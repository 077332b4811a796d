"""HTML to tagged PDF (PDF/UA-1) with WeasyPrint, with every network fetch refused.

* Only ``data:`` URLs are fetched. Anything else (http, https, file, ftp ...) raises
  WeasyPrint's ``FatalURLFetchingError``, which aborts the render (WeasyPrint swallows every
  other fetch error and renders without the resource); ``render_pdf`` turns it into
  ``BlockedResourceError``, an ordinary exception, because the fatal one derives from
  ``BaseException`` and would slip past ``except Exception`` in callers.
* ``pdf_variant="pdf/ua-1"`` tags the PDF (structure tree, /MarkInfo, /Lang, XMP metadata);
  the title and language come from the HTML's ``<title>`` and ``lang``, the creation date from
  its ``dcterms.created`` meta (the report's ``generated_at``), not from the clock.
* Fonts are subset by HarfBuzz when Debian's libharfbuzz-subset0 is installed (the set-up
  scripts install it, ADR 0039), at half the CPU of WeasyPrint's fontTools fallback. With
  fontTools, the bytes are reproducible only with ``SOURCE_DATE_EPOCH`` set: it stamps each
  subset with the current time. So ``checksum`` identifies a stored file (integrity, audit),
  not the report's content.
* One ``FontConfiguration`` is reused by every render. WeasyPrint does not promise that
  sharing it between threads is safe, so renders in one process take turns (a lock). A render
  takes 0.2 to 0.3 s of CPU here with HarfBuzz (scripts/bench/render_subsetting.py); many
  at once are rendered by several processes (``TRAINING_RENDER_PROCESSES``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Final

from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher

from training.reports.rendering.documents import CohortReport, EffectivenessReport, IndividualReport
from training.reports.rendering.html import cohort_html, effectiveness_html
from training.reports.rendering.individual import individual_html

PDF_VARIANT: Final = "pdf/ua-1"

FONT_CONFIG: Final = FontConfiguration()
_RENDER_LOCK: Final = threading.Lock()


class BlockedResourceError(RuntimeError):
    """The HTML referenced a resource that is not a ``data:`` URL."""


class NoNetworkFetcher(URLFetcher):  # type: ignore[misc]  # weasyprint is untyped
    """Fetches ``data:`` URLs only; any other URL aborts the render."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        if not url.strip().lower().startswith("data:"):
            raise FatalURLFetchingError(f"blocked fetch of a non-data URL: {url[:200]}")
        return super().fetch(url, headers)


def render_pdf(html: str) -> bytes:
    """A tagged PDF/UA-1 of a self-contained HTML document."""
    try:
        document = HTML(string=html, url_fetcher=NoNetworkFetcher())
        with _RENDER_LOCK:
            pdf: bytes = document.write_pdf(font_config=FONT_CONFIG, pdf_variant=PDF_VARIANT)
    except FatalURLFetchingError as error:
        raise BlockedResourceError(str(error)) from error
    return pdf


def checksum(pdf: bytes) -> str:
    """SHA-256 of the PDF bytes, hex (see the module docstring on reproducibility)."""
    return hashlib.sha256(pdf).hexdigest()


def render_individual(report: IndividualReport) -> bytes:
    return render_pdf(individual_html(report))


def render_cohort(report: CohortReport) -> bytes:
    return render_pdf(cohort_html(report))


def render_effectiveness(report: EffectivenessReport) -> bytes:
    return render_pdf(effectiveness_html(report))


def render_document(report: IndividualReport | CohortReport | EffectivenessReport) -> bytes:
    """The PDF of any of the three reports."""
    if isinstance(report, CohortReport):
        return render_cohort(report)
    if isinstance(report, EffectivenessReport):
        return render_effectiveness(report)
    return render_individual(report)

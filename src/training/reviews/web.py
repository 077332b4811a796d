"""The HR manager's review pages: the company's reviews by cycle and by person, drafting a
review, changing and finalising a draft (which re-plans the engineer's track), amending a
finalised review with a reason, and importing a batch of reviews from the HR system.

The pages read the same views and send the same commands as ``/v1/reviews`` and
``/v1/review-imports``, under the signed-in person's session, with the same scopes: reading
needs ``members:read``, every change ``members:write``. A form refused for what was entered
is shown again with the values kept and the message beside the field (422).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.concurrency import sync_to_thread
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template
from psycopg import AsyncConnection

from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.errors import AlreadyExists, InvalidTransition, NotFound, RuleViolated
from training.core.http.commands import Commands
from training.core.http.params import Cursor, Limit
from training.core.http.principal import Principal, requires_scope
from training.core.http.reads import Reads
from training.core.outcome import Outcome
from training.core.web.i18n import N_, gettext
from training.core.web.pages import page
from training.people import views as people
from training.reviews import forms
from training.reviews.domain import PerformanceReview
from training.reviews.forms import ReviewForm
from training.reviews.handlers import (
    AmendReview,
    DraftReview,
    FinaliseReview,
    ImportOutcome,
    ImportReviews,
    ReviseReview,
    load_review,
)
from training.reviews.http import ImportItem, imported_review
from training.reviews.views import REVIEWS, list_reviews, review_text_of
from training.skills import views as skills

PAGE_SIZE = 25
SKILL_CHOICES = 200
MAX_IMPORT_BYTES = 5 * 1024 * 1024
SECTION = "reviews"
READ = [requires_scope(Scope.MEMBERS_READ)]
WRITE = [requires_scope(Scope.MEMBERS_WRITE)]

STATUS_LABELS: dict[str, str] = {"draft": N_("Draft"), "finalised": N_("Finalised")}
RESULT_LABELS: dict[str, str] = {
    "created": N_("Added"),
    "updated": N_("Updated"),
    "amended": N_("Amended"),
    "unchanged": N_("Unchanged"),
    "failed": N_("Refused"),
}
IMPORT_ADVICE = N_("Choose a JSON file, or paste the reviews, in the format described above.")
IMPORT_UNREADABLE = N_("The reviews could not be read (%(detail)s).")
NO_PERSON = N_("No one's name, email or id starts with this.")
SEVERAL_PEOPLE = N_("Several people match: enter more of the name, or the email.")
ROW_REFUSED = N_("The row does not follow the format (%(detail)s).")

Position = Annotated[int | None, QueryParameter(name="at", ge=0, le=2**62)]


def _shown(location: str, outcome: Outcome[Any]) -> str:
    return f"{location}?at={outcome.position}" if outcome.position is not None else location


def _version(form: Any) -> int | None:
    """The version the form was shown at: a change made since refuses it (as ``If-Match``)."""
    value = str(form.get("version", ""))
    return int(value) if value.isdigit() and len(value) < 19 else None


async def _skills(reads: Reads) -> list[skills.SkillRecord]:
    async with reads.session() as conn:
        found = await skills.list_skills(
            conn,
            limit=SKILL_CHOICES,
            cursor=None,
            category=None,
            include_retired=False,
            source=None,
        )
    return found.items


async def _names(reads: Reads, member_ids: set[UUID]) -> dict[UUID, str]:
    """The people's names (their HR system id when erased or unknown)."""
    names = {}
    async with reads.session() as conn:
        for member_id in member_ids:
            record = await people.get_member(conn, member_id)
            if record is not None:
                names[member_id] = record.display_name or record.external_id
    return names


def _uuid_or_none(text: str) -> UUID | None:
    """``text`` as an id, or None when it is a name or an email to look up."""
    try:
        return UUID(text)
    except ValueError:
        return None


async def _person_filter(conn: AsyncConnection[Any], person: str) -> tuple[UUID | None, str]:
    """The person a filter names (their id, or the start of their name, email or id in the
    HR system) and, when it names nobody or several people, what to say."""
    if not person:
        return None, ""
    named = _uuid_or_none(person)
    if named is not None:
        return named, ""
    found = await people.list_members(conn, limit=2, cursor=None, query=person)
    if len(found.items) == 1:
        return found.items[0].member_id, ""
    return None, gettext(SEVERAL_PEOPLE if found.items else NO_PERSON)


@get("/reviews", guards=READ)
async def reviews(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    limit: Limit = PAGE_SIZE,
    cursor: Cursor = None,
    cycle: Annotated[str | None, QueryParameter(name="cycle", max_length=40)] = None,
    person: Annotated[str | None, QueryParameter(name="person", max_length=64)] = None,
    status: Annotated[str | None, QueryParameter(name="status", max_length=32)] = None,
    at: Position = None,
) -> Template:
    # A form sends every field: an empty one, or a value not on the list, filters nothing.
    filters = {
        "cycle": (cycle or "").strip(),
        "person": (person or "").strip(),
        "status": status if status in STATUS_LABELS else "",
    }
    await _after(reads, at)
    async with reads.session() as conn:
        member_id, person_note = await _person_filter(conn, filters["person"])
        found = await list_reviews(
            conn,
            limit=limit,
            cursor=cursor,
            cycle=filters["cycle"] or None,
            member_id=member_id,
            status=filters["status"] or None,
        )
    if person_note:
        found = dataclasses.replace(found, items=[], next_cursor=None)
    kept: dict[str, Any] = {name: value for name, value in filters.items() if value}
    if limit != PAGE_SIZE:
        kept["limit"] = limit
    next_page = (
        "/reviews?" + urlencode({**kept, "cursor": found.next_cursor}) if found.next_cursor else ""
    )
    return page(
        "reviews/list.html",
        viewer=principal,
        section=SECTION,
        reviews=found.items,
        names=await _names(reads, {r.member_id for r in found.items}),
        filters=filters,
        person_note=person_note,
        next_page=next_page,
        first_page="/reviews?" + urlencode(kept) if cursor else "",
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


async def _after(reads: Reads, at: int | None) -> None:
    """Waits until the reviews' view holds the change a form just made (``at``, the position
    its redirect carries): the page shows what was saved."""
    await dataclasses.replace(reads, sent_position=lambda: at).after([REVIEWS.info])


async def _new_page(
    reads: Reads,
    principal: Principal,
    form: ReviewForm,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    person = None
    try:
        member_id = UUID(form.member_id) if form.member_id else None
    except ValueError:
        member_id = None
    if member_id is not None:
        async with reads.session() as conn:
            person = await people.get_member(conn, member_id)
    return page(
        "reviews/new.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        form=form.shown(),
        person=person,
        skills=await _skills(reads),
        errors=dict(errors or {}),
    )


@get("/reviews/new", guards=WRITE)
async def new_review(
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    member_id: Annotated[str | None, QueryParameter(name="member_id", max_length=64)] = None,
) -> Template:
    return await _new_page(reads, principal, ReviewForm(member_id=(member_id or "").strip()))


@post("/reviews", guards=WRITE, status_code=303)
async def draft(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
) -> Response[Any]:
    form = ReviewForm.of(await request.form())
    checked = forms.check(form)
    cycle = forms.checked_cycle(form, checked)
    member_id = forms.checked_member(form, checked)
    if not checked.errors and checked.content is not None and member_id is not None:
        try:
            outcome = await commands.run(
                DraftReview(cycle, member_id, None, checked.content, strengths=checked.strengths)
            )
        except (AlreadyExists, RuleViolated) as error:
            checked.refused(error)
        else:
            location = _shown(f"/reviews/{outcome.result.review_id}", outcome)
            return Redirect(location, status_code=303)
    return await _new_page(reads, principal, form, checked.errors, status_code=422)


async def _review(
    app: TrainingApplication, principal: Principal, review_id: UUID
) -> PerformanceReview:
    review = await sync_to_thread(load_review, app, review_id)
    if review is None or review.tenant_id != principal.tenant_id:
        raise NotFound(f"review {review_id} not found")
    return review


async def _review_page(
    app: TrainingApplication,
    reads: Reads,
    principal: Principal,
    review_id: UUID,
    form: ReviewForm | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    review = await _review(app, principal, review_id)
    async with reads.session() as conn:
        text = await review_text_of(conn, review.id)
        person = await people.get_member(conn, review.member_id)
    return page(
        "reviews/review.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        review=review,
        status=str(review.status),
        person=person,
        person_name=(person.display_name or person.external_id) if person else "",
        strengths=text.strengths,
        reasons=text.amendment_reasons,
        form=(form or ReviewForm.of_review(review.content, text.strengths)).shown(),
        skills=await _skills(reads),
        errors=dict(errors or {}),
        statuses=STATUS_LABELS,
        may_write=principal.has_scope(Scope.MEMBERS_WRITE),
    )


@get("/reviews/{review_id:uuid}", guards=READ)
async def review_page(
    app: NamedDependency[TrainingApplication],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    review_id: FromPath[UUID],
    at: Position = None,
) -> Template:
    await _after(reads, at)
    return await _review_page(app, reads, principal, review_id)


async def _change(
    request: Request[Any, Any, Any],
    app: TrainingApplication,
    commands: Commands,
    reads: Reads,
    principal: Principal,
    review_id: UUID,
    *,
    amend: bool,
) -> Response[Any]:
    sent = await request.form()
    form = ReviewForm.of(sent)
    checked = forms.check(form)
    reason = forms.checked_reason(form, checked) if amend else ""
    status_code = 422
    if not checked.errors and checked.content is not None:
        command: AmendReview | ReviseReview
        if amend:
            command = AmendReview(
                review_id, checked.content, reason, _version(sent), checked.strengths
            )
        else:
            command = ReviseReview(review_id, checked.content, _version(sent), checked.strengths)
        try:
            outcome = await commands.run(command)
        except (AlreadyExists, RuleViolated) as error:
            if not error.field:
                raise
            checked.refused(error)
        except InvalidTransition as error:
            # An amendment that changes nothing; a draft finalised since the form was shown.
            checked.errors[""] = error.detail
            status_code = 409
        else:
            return Redirect(_shown(f"/reviews/{review_id}", outcome), status_code=303)
    return await _review_page(
        app, reads, principal, review_id, form=form, errors=checked.errors, status_code=status_code
    )


@post("/reviews/{review_id:uuid}", guards=WRITE, status_code=303)
async def revise(
    request: Request[Any, Any, Any],
    app: NamedDependency[TrainingApplication],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    review_id: FromPath[UUID],
) -> Response[Any]:
    return await _change(request, app, commands, reads, principal, review_id, amend=False)


@post("/reviews/{review_id:uuid}/amend", guards=WRITE, status_code=303)
async def amend(
    request: Request[Any, Any, Any],
    app: NamedDependency[TrainingApplication],
    commands: NamedDependency[Commands],
    reads: NamedDependency[Reads],
    principal: NamedDependency[Principal],
    review_id: FromPath[UUID],
) -> Response[Any]:
    return await _change(request, app, commands, reads, principal, review_id, amend=True)


@post("/reviews/{review_id:uuid}/finalise", guards=WRITE, status_code=303)
async def finalise(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    review_id: FromPath[UUID],
) -> Response[Any]:
    sent = await request.form()
    outcome = await commands.run(FinaliseReview(review_id, _version(sent)))
    return Redirect(_shown(f"/reviews/{review_id}", outcome), status_code=303)


@dataclasses.dataclass(frozen=True)
class Refused:
    """A row the import's format refused, shown as the command's own refusals are."""

    external_id: str
    result: str = "failed"
    review_id: UUID | None = None
    field: str | None = None
    message: str | None = None


def _import_page(
    principal: Principal,
    *,
    text: str = "",
    error: str = "",
    results: list[ImportOutcome | Refused] | None = None,
    status_code: int = 200,
) -> Template:
    counts: dict[str, int] = dict.fromkeys(RESULT_LABELS, 0)
    for result in results or []:
        counts[result.result] = counts.get(result.result, 0) + 1
    return page(
        "reviews/import.html",
        status_code=status_code,
        viewer=principal,
        section=SECTION,
        text=text,
        error=error,
        results=results,
        counts=counts,
        labels=RESULT_LABELS,
    )


@get("/reviews/import", guards=WRITE)
async def import_form(principal: NamedDependency[Principal]) -> Template:
    return _import_page(principal)


def _rows(content: bytes) -> list[Any]:
    """The items of ``{"reviews": [...]}`` (or of a bare list), each still to be checked."""
    decoded = msgspec.json.decode(content)
    items = decoded.get("reviews") if isinstance(decoded, dict) else decoded
    if not isinstance(items, list) or not 1 <= len(items) <= 1000:
        raise msgspec.ValidationError("send a list of 1 to 1000 reviews under 'reviews'")
    return items


def _external_id(item: Any, index: int) -> str:
    value = item.get("external_id") if isinstance(item, dict) else None
    return str(value)[:128] if value else f"#{index + 1}"


@post("/reviews/import", guards=WRITE, status_code=200)
async def import_reviews(
    request: Request[Any, Any, Any],
    commands: NamedDependency[Commands],
    principal: NamedDependency[Principal],
) -> Template:
    sent = await request.form()
    file = sent.get("file")
    content = await file.read(MAX_IMPORT_BYTES + 1) if isinstance(file, UploadFile) else b""
    text = str(sent.get("reviews", ""))[:MAX_IMPORT_BYTES]
    if not content.strip():
        content = text.encode()
    if not content.strip():
        return _import_page(principal, error=gettext(IMPORT_ADVICE), status_code=422)
    try:
        if len(content) > MAX_IMPORT_BYTES:
            raise msgspec.ValidationError("at most 5 MB")
        items = _rows(content)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        shown = gettext(IMPORT_UNREADABLE, detail=str(error))
        return _import_page(principal, text=text, error=shown, status_code=422)
    # Each row by the API's rules: a row they refuse is reported, the others imported.
    results: list[ImportOutcome | Refused | None] = []
    batch = []
    for index, item in enumerate(items):
        try:
            batch.append(imported_review(msgspec.convert(item, ImportItem), index))
        except (msgspec.ValidationError, ValidationException) as error:
            detail = str(getattr(error, "detail", "") or error)
            message = gettext(ROW_REFUSED, detail=detail)
            results.append(Refused(_external_id(item, index), message=message))
        else:
            results.append(None)
    done = iter((await commands.run(ImportReviews(tuple(batch)))).result if batch else ())
    shown_results = [result or next(done) for result in results]
    return _import_page(principal, text=text, results=shown_results)


ROUTES: list[Any] = [
    reviews,
    new_review,
    draft,
    import_form,
    import_reviews,
    review_page,
    revise,
    amend,
    finalise,
]

"""Private items over HTTP: authors (``skills:write``) write the tenant's own items, with their
keys, which its engineers meet in adaptive tests beside the starter bank."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from training.assessments.domain.items import Item, ItemKind, Option
from training.assessments.handlers.items import (
    AddItem,
    AuthoredItem,
    ReviseItem,
    authored_item,
    authored_items,
)
from training.assessments.http.common import OptionOut, SkillCode, SkillQuery, tenant_of
from training.core.access import Scope
from training.core.application import TrainingApplication
from training.core.http.commands import Commands, answer
from training.core.http.params import NO_NUL, Cursor, Limit, text
from training.core.http.principal import Principal, requires_scope
from training.core.pagination import DEFAULT_LIMIT, TEXT, page_after

ItemId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$",
        description="letters, digits, '.', '_' and '-'; unique across the starter bank and "
        "the tenant's items",
    ),
]
OptionId = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Stem = Annotated[str, text(max_length=4000)]
CodeText = Annotated[str, msgspec.Meta(max_length=20_000, pattern=NO_NUL)]
OptionText = Annotated[str, text(max_length=1000)]
# Path parameters are checked by their PathParameter; a msgspec.Meta here would be ignored.
PathItemId = Annotated[str, PathParameter(max_length=128)]


class OptionIn(msgspec.Struct, forbid_unknown_fields=True):
    id: OptionId
    text: OptionText


Options = Annotated[list[OptionIn], msgspec.Meta(min_length=2, max_length=12)]
Key = Annotated[list[OptionId], msgspec.Meta(min_length=1, max_length=12)]
TimeLimit = Annotated[int, msgspec.Meta(ge=15, le=900, description="seconds")]


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    item_id: ItemId
    skill: SkillCode
    kind: ItemKind
    stem: Stem
    options: Options
    answer: Key
    time_limit_seconds: TimeLimit
    difficulty: Annotated[float, msgspec.Meta(ge=-4.0, le=4.0, description="2PL b, logits")]
    discrimination: Annotated[float, msgspec.Meta(gt=0.0, le=4.0, description="2PL a")] = 1.0
    code: CodeText | None = None


class ItemRevisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """The item's new content; its skill and parameters stay."""

    kind: ItemKind
    stem: Stem
    options: Options
    answer: Key
    time_limit_seconds: TimeLimit
    code: CodeText | None = None


class AuthoredItemOut(msgspec.Struct, kw_only=True):
    """A private item as its authors see it: with its key and parameters."""

    item_id: str
    skill: str
    kind: str
    stem: str
    code: str | None
    options: list[OptionOut]
    answer: list[str]
    time_limit_seconds: int
    version: Annotated[int, msgspec.Meta(description="grows with every revision of the content")]
    difficulty: float
    discrimination: float
    parameter_version: Annotated[
        int, msgspec.Meta(description="the calibration version the parameters come from")
    ]


class ItemList(msgspec.Struct):
    items: list[AuthoredItemOut]
    next_cursor: str | None


def item_of(data: ItemIn | ItemRevisionIn, item_id: str, skill: str) -> Item:
    """The item a body writes: ``item_id`` and ``skill`` come from the body or the path."""
    return Item(
        item_id=item_id,
        skill=skill,
        kind=data.kind,
        stem=data.stem,
        code=data.code,
        options=tuple(Option(o.id, o.text) for o in data.options),
        answer=tuple(data.answer),
        time_limit_seconds=data.time_limit_seconds,
    )


def authored_item_out(authored: AuthoredItem) -> AuthoredItemOut:
    item = authored.item
    return AuthoredItemOut(
        item_id=item.item_id,
        skill=item.skill,
        kind=str(item.kind),
        stem=item.stem,
        code=item.code,
        options=[OptionOut(o.id, o.text) for o in item.options],
        answer=list(item.answer),
        time_limit_seconds=item.time_limit_seconds,
        version=item.version,
        difficulty=authored.parameters.difficulty,
        discrimination=authored.parameters.discrimination,
        parameter_version=authored.parameter_version,
    )


class ItemController(Controller):
    path = "/v1/items"
    tags = ["Assessments"]
    security = [{"bearer": []}]

    @post(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="addItem",
        summary="Add a private item to the tenant's bank",
        description="Seen only by this tenant's engineers, in adaptive tests of its skill, "
        "alongside the starter bank. `answer` is the key: one option for single_choice and "
        "code_output, one or more (not all) for multiple_choice, every option in the right "
        "order for ordering. `difficulty` and `discrimination` are the initial 2PL "
        "parameters until a calibration re-estimates the difficulty.",
        status_code=201,
    )
    async def add(
        self, commands: NamedDependency[Commands], data: JSONBody[ItemIn]
    ) -> Response[AuthoredItemOut]:
        item = item_of(data, data.item_id, data.skill)
        outcome = await commands.run(AddItem(item, data.difficulty, data.discrimination))
        version: int = outcome.result
        body = AuthoredItemOut(
            item_id=item.item_id,
            skill=item.skill,
            kind=str(item.kind),
            stem=item.stem,
            code=item.code,
            options=[OptionOut(o.id, o.text) for o in item.options],
            answer=list(item.answer),
            time_limit_seconds=item.time_limit_seconds,
            version=version,
            difficulty=data.difficulty,
            discrimination=data.discrimination,
            parameter_version=0,
        )
        location = f"/v1/items/{item.item_id}"
        return answer(outcome, body, status=201, version=version, location=location)

    @get(
        "/",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="listItems",
        summary="The tenant's private items, with keys, versions and current parameters",
    )
    async def list_items(
        self,
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        skill: SkillQuery = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ItemList:
        items = await sync_to_thread(authored_items, app, tenant_of(principal), skill)
        # The bank is one aggregate, read whole: its items are paged in memory, by item id.
        page = page_after(
            [authored_item_out(item) for item in items],
            limit=limit,
            cursor=cursor,
            key=lambda item: [item.item_id],
            kinds=[TEXT],
        )
        return ItemList(page.items, page.next_cursor)

    @get(
        "/{item_id:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="getItem",
        summary="One of the tenant's private items, with its key",
    )
    async def get_item(
        self,
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        item_id: PathItemId,
    ) -> AuthoredItemOut:
        found = await sync_to_thread(authored_item, app, tenant_of(principal), item_id)
        return authored_item_out(found)

    @put(
        "/{item_id:str}",
        guards=[requires_scope(Scope.SKILLS_WRITE)],
        operation_id="reviseItem",
        summary="Revise a private item's content (a new version; parameters stay)",
        description="Attempts already under way keep asking the version they administered "
        "only until they move on; results are not affected. An unchanged body changes "
        "nothing.",
    )
    async def revise(
        self,
        commands: NamedDependency[Commands],
        principal: NamedDependency[Principal],
        app: NamedDependency[TrainingApplication],
        item_id: PathItemId,
        data: JSONBody[ItemRevisionIn],
    ) -> Response[AuthoredItemOut]:
        tenant_id = tenant_of(principal)
        current = await sync_to_thread(authored_item, app, tenant_id, item_id)
        outcome = await commands.run(ReviseItem(item_of(data, item_id, current.item.skill)))
        revised = await sync_to_thread(authored_item, app, tenant_id, item_id)
        return answer(outcome, authored_item_out(revised), version=outcome.result)

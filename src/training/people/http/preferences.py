"""A person's own preferences: the language they read the service in."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, Response, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from training.core.http.commands import Commands, answer
from training.core.http.principal import requires_tenant
from training.people.handlers.members import ChooseLanguage, MemberSnapshot

Language = Literal["en", "zh-Hans"]


class LanguageIn(msgspec.Struct, forbid_unknown_fields=True):
    language: Language


class LanguageOut(msgspec.Struct):
    language: str
    version: int


class PreferencesController(Controller):
    path = "/v1/me"
    tags = ["People"]
    security = [{"bearer": []}]

    @put(
        "/language",
        guards=[requires_tenant],
        operation_id="chooseMyLanguage",
        summary="Choose the language you read the service in (your own member token)",
        description="English (`en`) or Simplified Chinese (`zh-Hans`): the web app uses it "
        "from your next sign-in, on any device.",
    )
    async def choose_language(
        self, commands: NamedDependency[Commands], data: JSONBody[LanguageIn]
    ) -> Response[LanguageOut]:
        outcome = await commands.run(ChooseLanguage(data.language))
        snapshot: MemberSnapshot = outcome.result
        body = LanguageOut(snapshot.language or data.language, snapshot.version)
        return answer(outcome, body, version=snapshot.version)

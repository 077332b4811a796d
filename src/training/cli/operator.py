"""What an operator runs by hand: the demo tenant and signing in to it, an operator API client,
and rotating the signing keys."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING

from training.cli.serving import base_url, on_terminal
from training.infra.settings import Settings

if TYPE_CHECKING:
    pass


def load_demo(settings: Settings, *, new_client: bool) -> int:
    from training.bootstrap import command_bus, training_application
    from training.demo.world import hand_over_demo_client, issue_demo_client, load_demo
    from training.infra.database import database_for

    with database_for(settings) as database:
        app = training_application(database)
        try:
            bus = command_bus(app)
            if new_client:
                client = issue_demo_client(bus)
                if client is None:
                    print("the demo tenant is not loaded: run `training demo`", file=sys.stderr)
                    return 1
                print("issued a new API client of the demo tenant", file=sys.stderr)
            else:
                loaded = load_demo(bus)
                if loaded is None:
                    print(
                        "the demo tenant is already loaded (`training demo --new-client` "
                        "issues another API client)",
                        file=sys.stderr,
                    )
                    return 0
                print(f"loaded the demo tenant {loaded.tenant_id}", file=sys.stderr)
                client = loaded.client
        finally:
            app.close()
    print("\n".join(hand_over_demo_client(client, settings.data_dir, on_terminal=on_terminal())))
    return 0


def demo_sign_in(settings: Settings, email: str) -> int:
    from training.demo.sign_in import demo_member_token, demo_people, find_demo_person
    from training.infra.database import database_for

    with database_for(settings) as database:
        people = demo_people(database)
        if not people:
            print("the demo tenant is not loaded: run `training demo`", file=sys.stderr)
            return 1
        person = find_demo_person(people, email) if email else None
        if person is None:
            if email:
                print(f"no active person of the demo tenant has the email {email}", file=sys.stderr)
            print("people of the demo tenant (email, roles):", file=sys.stderr)
            for someone in people:
                roles = ", ".join(str(r) for r in someone.roles)
                print(f"  {someone.email:<28} {roles}", file=sys.stderr)
            return 0 if not email else 1
        token = demo_member_token(database, settings, person.member_id)
    print(
        f"signed in as {person.name} ({', '.join(str(r) for r in person.roles)}) for 15 minutes; "
        f"send the token as `Authorization: Bearer`, e.g.\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {base_url(settings)}/v1/me/track',
        file=sys.stderr,
    )
    print(token)
    return 0


def create_operator_client(settings: Settings, name: str) -> int:
    from training.bootstrap import command_bus, training_application
    from training.core.context import CommandContext
    from training.infra.database import database_for
    from training.tenancy.domain import OPERATOR_SCOPE
    from training.tenancy.handlers import RegisterApiClient

    with database_for(settings) as database:
        app = training_application(database)
        try:
            context = CommandContext.system("cli", request_id=f"cli-{uuid.uuid4().hex[:12]}")
            issued = (
                command_bus(app)
                .execute(context, RegisterApiClient(None, name, (OPERATOR_SCOPE,)))
                .result
            )
        finally:
            app.close()
    print(f"client_id={issued.client_id}")
    print(f"client_secret={issued.client_secret}")
    print(
        "The secret is shown only now. Get a token with:\n"
        f"  curl -s -u {issued.client_id}:<secret> -d grant_type=client_credentials "
        f"{base_url(settings)}/oauth2/token",
        file=sys.stderr,
    )
    return 0


def rotate_keys(settings: Settings, *, lost: bool) -> int:
    from training.identity.keys import rotate_signing_key
    from training.infra.database import database_for
    from training.infra.secret_key_check import check_secret_key
    from training.infra.secretbox import LOCAL_KEY_FILE, SecretBox

    local_key = settings.data_dir / LOCAL_KEY_FILE
    had_local_key = local_key.exists()
    with database_for(settings) as database:
        if not lost:
            check_secret_key(database.admin_url, settings)
        kid = rotate_signing_key(database.admin_url, SecretBox.from_settings(settings))
    if settings.secret_key is None and not settings.database_url and not had_local_key:
        print(f"created a new secret key in {local_key}: back it up", file=sys.stderr)
    print(f"new signing key {kid}; the previous key stays in the JWKS until the next rotation")
    if lost:
        print(
            "what the lost secret key sealed cannot be opened any more: enter the client "
            "secrets of the tenants' identity providers again",
            file=sys.stderr,
        )
    return 0

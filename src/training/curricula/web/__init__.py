"""The HR manager's curriculum pages: the company's curricula and the platform catalogue, a
curriculum's versions and what changed between two, forking a catalogue curriculum, and
editing a draft's modules before publishing it.

The pages read the same views and send the same commands as ``/v1/curricula``, under the
signed-in person's session, with the same scopes: reading needs ``curricula:read``, every
change ``curricula:write``. A form refused for what was entered is shown again with the
values kept and the message beside the field (422); a prerequisite cycle is named.
"""

from __future__ import annotations

from typing import Any

from training.curricula.web import curricula, modules

ROUTES: list[Any] = [*curricula.ROUTES, *modules.ROUTES]

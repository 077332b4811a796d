"""How a tenant's roster-like aggregates are copied: container by container."""

from __future__ import annotations

from typing import Any, Self


class CopiedFlat:
    """An aggregate whose state is containers of immutable values (ids, keys, dates).

    The repository's cache hands every command a deep copy of what it loads. For a tenant's
    seat roster or external ids, thousands of entries, that copy cost 54 and 119 ms at 10,000
    members (every registration loads both); a copy of each container is as safe here (its
    entries never change in place) and costs a fraction of it.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        copied = object.__new__(type(self))
        copied.__dict__.update(
            (name, value.copy() if isinstance(value, dict | list | set) else value)
            for name, value in vars(self).items()
        )
        return copied

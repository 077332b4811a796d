"""Import-linter contracts that the built-in types cannot say (ADR 0030).

* ``allow_list``: the modules matching ``source_modules`` import only what ``allowed_modules``
  names. A deny-list misses what nobody thought of (``os``, ``time``,
  ``eventsourcing.persistence``); an allow-list names what a pure domain may use.
* ``context_boundaries``: a bounded context uses another only through the other's public
  roles (``domain``, ``views``, ``queries``): never through its ``http``, ``handlers`` or
  anything else inside it.
* ``no_cycles``: no module imports itself through others, whatever packages they are in.

Patterns are ``fnmatch`` patterns over dotted module names (``training.*.domain``). External
packages appear in the graph by their top-level name; the import line tells which of their
modules was imported (``from eventsourcing.domain import Aggregate``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output

IMPORTED = re.compile(r"^\s*(?:from\s+(?P<from>[\w.]+)\s+import|import\s+(?P<import>[\w.]+))")


def _matches(module: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(module, pattern) for pattern in patterns)


def _named_modules(graph: ImportGraph, importer: str, imported: str) -> list[tuple[str, int]]:
    """The modules ``importer`` names in its import lines of ``imported``: the full dotted
    name for an external package, which the graph knows only by its top-level name."""
    found = []
    for detail in graph.get_import_details(importer=importer, imported=imported):
        match = IMPORTED.match(detail["line_contents"])
        named = (match["from"] or match["import"]) if match else imported
        if not named.startswith(imported):
            named = imported
        found.append((named, int(detail["line_number"])))
    return found or [(imported, 0)]


class AllowListContract(Contract):
    type_name = "allow_list"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = [str(pattern) for pattern in self.source_modules]  # type: ignore[attr-defined]
        allowed = [str(pattern) for pattern in self.allowed_modules]  # type: ignore[attr-defined]
        offences = []
        for importer in sorted(graph.modules):
            if not _matches(importer, sources):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                for named, line in _named_modules(graph, importer, imported):
                    if not _matches(named, allowed):
                        offences.append(f"{importer}:{line} imports {named}, not allowed")
        return ContractCheck(kept=not offences, metadata={"offences": offences})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for offence in check.metadata["offences"]:
            output.print_error(f"- {offence}", bold=False)
        output.new_line()


class ContextBoundariesContract(Contract):
    type_name = "context_boundaries"

    contexts = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.ListField(subfield=fields.StringField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        contexts = [str(name) for name in self.contexts]  # type: ignore[attr-defined]
        public = [str(role) for role in self.public]  # type: ignore[attr-defined]
        ignored = {str(line) for line in (self.ignore_imports or [])}  # type: ignore[attr-defined]

        def context_of(module: str) -> str | None:
            for context in contexts:
                if module == context or module.startswith(context + "."):
                    return context
            return None

        offences = []
        unused = set(ignored)
        for importer in sorted(graph.modules):
            home = context_of(importer)
            if home is None:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                other = context_of(imported)
                if other is None or other == home:
                    continue
                role = imported[len(other) + 1 :].split(".")[0]
                if role in public:
                    continue
                pair = f"{importer} -> {imported}"
                if pair in ignored:
                    unused.discard(pair)
                    continue
                line = graph.get_import_details(importer=importer, imported=imported)
                where = f":{line[0]['line_number']}" if line else ""
                offences.append(f"{importer}{where} uses {imported} (not {other}'s public roles)")
        offences += [f"ignored import no longer made: {pair}" for pair in sorted(unused)]
        return ContractCheck(kept=not offences, metadata={"offences": offences})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for offence in check.metadata["offences"]:
            output.print_error(f"- {offence}", bold=False)
        output.new_line()


class NoCyclesContract(Contract):
    """No module imports itself through others (function-level imports count too): every
    strongly connected component of the import graph under ``root`` is one module."""

    type_name = "no_cycles"

    root = fields.StringField()

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        root = str(self.root)  # type: ignore[attr-defined]
        modules = sorted(m for m in graph.modules if m == root or m.startswith(root + "."))
        cycles = [
            " -> ".join(component)
            for component in _components(graph, modules)
            if len(component) > 1
        ]
        return ContractCheck(kept=not cycles, metadata={"offences": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["offences"]:
            output.print_error(f"- modules that import each other: {cycle}", bold=False)
        output.new_line()


def _components(graph: ImportGraph, modules: list[str]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (the graph is deep)."""
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in modules:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & inside)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & inside
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found

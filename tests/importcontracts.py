"""An import-linter contract type for ``lint-imports`` (pyproject.toml): no module import circle.

``acyclic_siblings`` judges whole packages (``maild.sla`` and ``maild.notify`` use each other's
modules one way each); this contract judges modules: no module of ``maild`` reaches itself
through its imports, whether they are at the top, inside functions or under TYPE_CHECKING.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicModulesContract(Contract):
    """Every import of a module below ``containers`` goes one way: the imported module never
    leads back to the importer."""

    type_name = "acyclic_modules"
    containers = fields.SetField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        roots = {str(c) for c in self.containers}  # type: ignore[attr-defined]
        circles: list[list[str]] = []
        seen: set[frozenset[str]] = set()
        for module in sorted(graph.modules):
            if not any(module == r or module.startswith(r + ".") for r in roots):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(module)):
                back = graph.find_shortest_chain(importer=imported, imported=module)
                if back and frozenset(back) not in seen:
                    seen.add(frozenset(back))
                    circles.append([module, *back])
        return ContractCheck(kept=not circles, warnings=None, metadata={"circles": circles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for circle in check.metadata["circles"]:
            output.print_error(" -> ".join(circle))
            output.new_line()

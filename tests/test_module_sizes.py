"""No module of ``maild`` grows past 500 lines: a longer one holds more than one job (issue 19)."""

from __future__ import annotations

from pathlib import Path

MAILD = Path(__file__).resolve().parents[1] / "maild"
LIMIT = 500


def test_no_module_of_maild_is_over_500_lines() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in MAILD.rglob("*.py")}
    assert len(sizes) > 100  # the package was found
    over = {str(p.relative_to(MAILD)): n for p, n in sizes.items() if n > LIMIT}
    assert over == {}, f"split these along their jobs: {over}"

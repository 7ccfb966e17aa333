"""Package layout guard rails: import boundaries and the four parts of every check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import checks
from smtpdiag.catalog import render_catalog_markdown

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(path: Path) -> set[str]:
    """Return the top-level package names that a module imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


# The CLI is the one core module that composes the packages.
CORE_MODULES = [path for path in modules("smtpdiag") if path != ROOT / "smtpdiag" / "cli.py"]


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_core_imports_no_checks_or_exporters(path: Path) -> None:
    assert imported_packages(path) & {"checks", "exporters"} == set()


@pytest.mark.parametrize("path", modules("checks"), ids=lambda path: str(path.relative_to(ROOT)))
def test_checks_import_no_exporters(path: Path) -> None:
    assert "exporters" not in imported_packages(path)


@pytest.mark.parametrize("path", modules("exporters"), ids=lambda path: str(path.relative_to(ROOT)))
def test_exporters_import_no_checks(path: Path) -> None:
    assert "checks" not in imported_packages(path)


CHECK_IDS = [spec.id for spec in checks.REGISTRY]


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_check_has_module(check_id: str) -> None:
    assert (ROOT / "checks" / f"{check_id}.py").is_file()


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_check_has_test_module(check_id: str) -> None:
    assert (ROOT / "tests" / "checks" / f"test_{check_id}.py").is_file()


@pytest.mark.parametrize("check_id", CHECK_IDS)
def test_check_has_docs_page(check_id: str) -> None:
    assert (ROOT / "docs" / "checks" / f"{check_id}.md").is_file()


def test_every_check_module_registered() -> None:
    on_disk = {path.stem for path in (ROOT / "checks").glob("*.py") if path.stem != "__init__"}
    assert on_disk == set(CHECK_IDS)


@pytest.mark.parametrize("spec", checks.REGISTRY, ids=CHECK_IDS)
def test_finding_codes_belong_to_check(spec: checks.CheckSpec) -> None:
    areas = {kind.area for kind in spec.findings}
    assert areas == {spec.id}


def test_finding_codes_unique() -> None:
    all_codes = [kind.code for spec in checks.REGISTRY for kind in spec.findings]
    assert len(all_codes) == len(set(all_codes))


def test_findings_catalog_up_to_date() -> None:
    on_disk = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    assert on_disk == render_catalog_markdown(checks.REGISTRY), (
        "docs/findings.md is out of date: run `smtpdiag findings --markdown > docs/findings.md`"
    )


@pytest.mark.parametrize("spec", checks.REGISTRY, ids=CHECK_IDS)
def test_docs_page_names_every_code(spec: checks.CheckSpec) -> None:
    page = (ROOT / "docs" / "checks" / f"{spec.id}.md").read_text(encoding="utf-8")
    missing = [kind.code for kind in spec.findings if kind.code not in page]
    assert missing == []

"""No module under src/ may import a provider SDK: they are test-only oracles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[3] / "src" / "brokerlink"
FORBIDDEN = ("snaptrade_client", "snaptrade", "plaid")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _is_sdk(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN


def test_source_tree_imports_no_sdk():
    offenders = [
        f"{path.relative_to(SRC.parent)}:{line} imports {module}"
        for path in sorted(SRC.rglob("*.py"))
        for line, module in _imports(path)
        if _is_sdk(module)
    ]
    assert offenders == []


def test_detector_catches_an_sdk_import(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text(
        "import snaptrade_client\nfrom plaid.api import plaid_api\n"
        "import importlib\nimportlib.import_module('snaptrade_client.rest')\n"
    )
    assert [m for _, m in _imports(sample) if _is_sdk(m)] == [
        "snaptrade_client",
        "plaid.api",
        "snaptrade_client.rest",
    ]


@pytest.mark.parametrize(
    "module",
    ["brokerlink.providers.snaptrade", "brokerlink.providers.plaid", "brokerlink.composition"],
)
def test_importing_providers_loads_no_sdk(module):
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('snaptrade_client', 'plaid'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

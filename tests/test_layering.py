"""Data flows one way, quant -> firmware -> hdl -> sim -> host: a stage never imports a later one, and\nfirmware/ needs neither torch nor Amaranth."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(package):
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield path, [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, [node.module]


@pytest.mark.parametrize("package, forbidden", [
    ("quant", ("firmware", "hdl", "host", "sim")),
    ("firmware", ("hdl", "host", "sim", "torch", "amaranth", "snntorch")),
    ("hdl", ("sim", "host")),
    ("sim", ("host",)),
])
def test_lower_stages_do_not_import_higher_ones(package, forbidden):
    offences = [(str(path.relative_to(ROOT)), name) for path, names in imported_modules(package)
                for name in names if name.split(".")[0] in forbidden]
    assert not offences

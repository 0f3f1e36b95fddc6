"""infra/ is what a deployment is made of; local/ (the embedded local stack) builds on it, never the other way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_infra_never_imports_the_local_stack_or_tests():
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] in ("local", "tests"))
        for path in (ROOT / "infra").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_one_state_machine_loader_and_one_environment_mapping():
    """local/resources.py takes both from infra/ instead of keeping its own copy."""
    from infra import environment, state_machines
    from local import resources

    assert resources.service_environment is environment.service_environment
    assert resources.filled_definition is state_machines.filled_definition
    assert "DefinitionFile" not in (ROOT / "local" / "resources.py").read_text(), \
        "the local stack reads state machine definition files itself again"


def test_template_and_local_environments_name_the_same_variables():
    from infra.environment import RESOURCES, service_environment, template_environment

    created = {}
    for value in RESOURCES.values():
        logical_id, attribute = (value, "Ref") if isinstance(value, str) else value
        created.setdefault(logical_id, {})[attribute] = f"{logical_id}.{attribute}"
    assert set(service_environment(created)) == set(template_environment()) == set(RESOURCES)

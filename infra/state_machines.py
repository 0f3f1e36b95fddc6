"""State machine definitions: the file named by a resource's `Metadata.DefinitionFile`, with `${Placeholders}` that
CloudFormation fills from `DefinitionSubstitutions`. The one loader for the deployed template (which inlines the
definition and lets CloudFormation substitute) and the local stack (which substitutes the names it created)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

INFRA_DIR = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def definition_text(resource: dict[str, Any]) -> str:
    """The raw definition file of a state machine resource (placeholders unfilled)."""
    return (INFRA_DIR / resource["Metadata"]["DefinitionFile"]).read_text()


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def check_substitutions(logical_id: str, resource: dict[str, Any]) -> None:
    """Every placeholder of the definition has a DefinitionSubstitutions entry."""
    declared = set(resource.get("Properties", {}).get("DefinitionSubstitutions", {}))
    missing = placeholders(definition_text(resource)) - declared
    if missing:
        raise ValueError(f"{logical_id}: placeholders without DefinitionSubstitutions: {sorted(missing)}")


def definition(resource: dict[str, Any]) -> dict[str, Any]:
    """The definition as JSON with placeholders left in (for the template: CloudFormation fills them)."""
    return json.loads(definition_text(resource))


def filled_definition(resource: dict[str, Any], substitutions: dict[str, str]) -> str:
    """The definition text with every ${Name} replaced by substitutions[Name] (for the local stack)."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise KeyError(f"state machine placeholder ${{{name}}} has no DefinitionSubstitutions entry")
        return substitutions[name]

    return PLACEHOLDER.sub(fill, definition_text(resource))


def state_machines(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> resource, for every state machine with a definition file."""
    return {
        logical_id: resource for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::StepFunctions::StateMachine"
        and resource.get("Metadata", {}).get("DefinitionFile")
    }

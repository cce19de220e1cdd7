"""JSON Schema of the spec, for editors (YAML language servers) and other tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dataset import DatasetSpec

SCHEMA_PATH = Path(__file__).resolve().parent / "json" / "dataset.schema.json"


def dataset_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of spec files, including the loader's ``extends`` key."""
    schema = DatasetSpec.model_json_schema(mode="validation")
    schema["properties"]["extends"] = {
        "type": "string", "title": "Extends",
        "description": "a catalogue scene (static/spring) or a spec file this spec is deep-merged onto"}
    # a spec that extends another may leave out what the base provides, and delete a base's
    # variable, domain or parameter with a null (not null without extends)
    nullable = ("variables", "domains", "parameters")
    for k in nullable:
        prop = schema["properties"][k]
        prop["additionalProperties"] = {"anyOf": [prop["additionalProperties"], {"type": "null"}]}
    schema["if"] = {"required": ["extends"]}
    schema["else"] = {"required": schema.pop("required"),
                      "properties": {k: {"additionalProperties": {"not": {"type": "null"}}} for k in nullable}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://crlgen.dev/schemas/dataset.schema.json",
            "title": "crlgen dataset spec", **schema}


def render_schema() -> str:
    """The schema as the text committed in ``schemas/json/dataset.schema.json``."""
    return json.dumps(dataset_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write the schema file (in a source checkout); returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema())
    return path

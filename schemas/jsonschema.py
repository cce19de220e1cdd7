"""JSON Schema of the spec, for editors (YAML language servers) and other tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .dataset import DatasetSpec

SCHEMA_PATH = Path(__file__).resolve().parent / "json" / "dataset.schema.json"


def dataset_json_schema() -> dict[str, Any]:
    schema = DatasetSpec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "https://crlgen.dev/schemas/dataset.schema.json",
            "title": "crlgen dataset spec", **schema}


def render_schema() -> str:
    return json.dumps(dataset_json_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema())
    return path

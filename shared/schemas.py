"""JSON Schema files generated from the contracts (checked in CI for drift)."""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import ALL_CONTRACTS

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def render() -> dict[str, str]:
    """File name -> JSON Schema text for every contract."""
    out = {}
    for name, contract in sorted(ALL_CONTRACTS.items()):
        schema = contract.model_json_schema()
        schema["$id"] = f"https://tonewatch.invalid/schemas/{name}.v1.json"
        out[f"{name}.v1.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in render().items():
        path = directory / filename
        path.write_text(text)
        written.append(path)
    return written


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from the contracts (missing, stale or extra)."""
    expected = render()
    present = {p.name for p in directory.glob("*.json")}
    stale = [n for n, t in expected.items() if not (directory / n).exists() or (directory / n).read_text() != t]
    return sorted(stale + [n for n in present - expected.keys()])

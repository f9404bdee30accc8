"""The list-price file (evals/data/prices.yaml): read by the estimate and by the report.

Free of Inspect imports, so that a report of finished logs starts quickly.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any, NoReturn

import yaml

PRICES = Path(str(files("evals"))) / "data" / "prices.yaml"


def load_prices(path: Path | None = None) -> dict[str, Any]:
    """Price per million tokens by model, checked; a bad file is a one-line ConfigError."""
    path = path or PRICES
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        _refuse(f"price file {path} cannot be read ({err})")
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        _refuse(f"{path}: expected 'as_of', 'batch_discount' and 'models'")
    for name, price in data["models"].items():
        missing = {"input", "output", "input_cache_read", "input_cache_write"} - set(price or {})
        if missing:
            _refuse(f"{path}: model {name!r} lacks {sorted(missing)}")
    return data


def _refuse(message: str) -> NoReturn:
    from evals.errors import ConfigError  # imports Inspect: only for a bad file

    raise ConfigError(message) from None

"""Fixtures for the packaging checks: render the Helm chart with Helm's own code (helm-python-sdk)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import CHART, Rendered, require


@pytest.fixture(scope="session")
def render() -> Callable[[dict[str, Any]], Rendered]:
    """Render the chart: returns the manifests grouped by kind (NOTES.txt under the key "NOTES")."""
    helm_python = require("helm_python")
    chart = helm_python.Chart.load(str(CHART))

    def _render(values: dict[str, Any]) -> Rendered:
        files = chart.render(values, name="tr", namespace="egress")
        out: Rendered = {}
        for path, text in files.items():
            if path.endswith("NOTES.txt"):
                out["NOTES"] = [{"text": text}]
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    out.setdefault(doc["kind"], []).append(doc)
        return out

    return _render

"""docs/grafana/kokatto-dashboard.json: a Grafana dashboard (its JSON model) whose every
query names metrics that /metrics really serves, and that shows every platform metric."""

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "kokatto-dashboard.json"
METRIC_NAME = re.compile(r"\b(?:kokatto|django)_[a-z0-9_]+\b")
SAMPLE_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum", "_created")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def queries(model: dict) -> list[str]:
    panels = [p for p in model["panels"] if p["type"] != "row"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_it_is_a_grafana_dashboard_model_with_a_prometheus_data_source_to_choose():
    model = dashboard()

    assert model["title"] and model["uid"] and model["schemaVersion"] >= 36
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    for panel in model["panels"]:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24 and place["h"] > 0
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])


@pytest.mark.django_db
def test_every_metric_it_queries_is_served_and_every_platform_metric_is_shown(client):
    response = client.get("/metrics")
    families = {f.name for f in text_string_to_metric_families(response.content.decode())}
    served = {name + suffix for name in families for suffix in SAMPLE_SUFFIXES}

    queried = {name for expr in queries(dashboard()) for name in METRIC_NAME.findall(expr)}

    assert queried - served == set()
    # A counter's `_created` (when it started) is a gauge family of its own in this format.
    platform = {n for n in families if n.startswith("kokatto_") and not n.endswith("_created")}
    shown = {name for name in platform if any(name + s in queried for s in SAMPLE_SUFFIXES)}
    assert shown == platform

"""Reading /metrics as Prometheus does: its text parsed by prometheus_client's own parser."""

from prometheus_client.parser import text_string_to_metric_families


def samples(exposition: bytes | str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics answer: (sample name, its labels) -> value."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels) -> float:
    """One sample's value; 0 for a labelled counter not counted yet."""
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """/metrics through the test client (from loopback, which needs no token by default)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    return samples(response.content)

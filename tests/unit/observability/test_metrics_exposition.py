"""``Metrics.render``: the Prometheus 0.0.4 text is well formed, escaped, and histograms are complete."""

from __future__ import annotations

import pytest

from tests.unit.observability.prom_exposition import parse
from tokenrelay.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Histogram, Metrics


def _busy_metrics() -> Metrics:
    metrics = Metrics(version="1.2.3")
    metrics.request_done("orders", "GET", 200, 200, 0.012, 0.010, replayed=False)
    metrics.request_done("orders", "POST", 200, 200, 0.3, 0.2, replayed=True)
    metrics.request_done("billing", "GET", 502, None, 0.002, None, replayed=False)
    metrics.replay_skipped("orders", "body_too_large")
    metrics.token_lookup("default", hit=True)
    metrics.token_fetch("default", "ok", 0.05)
    metrics.config_reload("ok")
    metrics.idp_request("idp.example:8443", 200, 0.04)
    metrics.upstream_connection(reused=False, connect_duration=0.003)
    metrics.upstream_connection(reused=True)
    metrics.upstream_pool_waited(0.5)
    return metrics


def test_every_sample_parses_under_a_declared_family() -> None:
    """A strict 0.0.4 parser accepts the whole output, with every family typed before its samples."""
    families = parse(_busy_metrics().render())
    expected = {
        "tokenrelay_build_info": "gauge",
        "tokenrelay_requests_total": "counter",
        "tokenrelay_request_duration_seconds": "histogram",
        "tokenrelay_upstream_duration_seconds": "histogram",
        "tokenrelay_upstream_responses_total": "counter",
        "tokenrelay_replays_total": "counter",
        "tokenrelay_replays_skipped_total": "counter",
        "tokenrelay_token_fetches_total": "counter",
        "tokenrelay_token_cache_lookups_total": "counter",
        "tokenrelay_token_expiry_seconds": "gauge",
        "tokenrelay_config_reloads_total": "counter",
        "tokenrelay_idp_request_duration_seconds": "histogram",
    }
    assert {name: families[name].type for name in expected} == expected
    assert all(family.help for family in families.values())


def test_the_content_type_names_format_version_0_0_4() -> None:
    """Scrapers pick the parser from the Content-Type."""
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_label_values_are_escaped_and_round_trip() -> None:
    """Backslash, double quote and line feed in a label value are escaped; a parser gets the original back."""
    metrics = Metrics(version="1")
    awkward = 'we"ird\\route\nname'
    metrics.request_done(awkward, "GET", 200, None, 0.1, None, replayed=False)
    text = metrics.render()
    assert 'route="we\\"ird\\\\route\\nname"' in text
    family = parse(text)["tokenrelay_requests_total"]
    assert family.value(route=awkward, method="GET", status="200") == 1


def test_histogram_buckets_are_cumulative_and_end_with_inf_equal_to_count() -> None:
    """Each bucket counts observations <= its bound; +Inf equals _count; _sum adds the observations."""
    histogram = Histogram("h_seconds", "help", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.7, 3.0):
        histogram.observe(("r",), value)
    out: list[str] = []
    histogram.render(out)
    family = parse("# TYPE h_seconds histogram\n" + "\n".join(out[2:]) + "\n")["h_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name == "h_seconds_bucket"}
    assert buckets == {"0.1": 1, "1.0": 3, "+Inf": 4}
    assert family.value("h_seconds_count", route="r") == 4
    assert family.value("h_seconds_sum", route="r") == pytest.approx(4.25)


def test_an_observation_equal_to_a_bound_counts_in_that_bucket() -> None:
    """``le`` means less than *or equal*: 0.1 lands in the 0.1 bucket, not the next one."""
    histogram = Histogram("h_seconds", "help", buckets=(0.1, 1.0))
    histogram.observe((), 0.1)
    out: list[str] = []
    histogram.render(out)
    assert 'h_seconds_bucket{le="0.1"} 1' in out


def test_request_duration_histogram_has_every_configured_bucket() -> None:
    """All latency buckets plus +Inf are rendered for each route, so quantiles work from the first request."""
    family = parse(_busy_metrics().render())["tokenrelay_request_duration_seconds"]
    bounds = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket") and s.labels["route"] == "orders"]
    assert bounds == [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]


def test_buckets_must_be_strictly_increasing() -> None:
    """A mis-ordered bucket list is a programming error caught at construction, not a corrupt exposition."""
    with pytest.raises(ValueError, match="strictly increasing"):
        Histogram("h", "help", buckets=(1.0, 0.5))


def test_the_output_is_deterministic() -> None:
    """Series are sorted, so two renders of the same state are byte-identical (diffable, cache-friendly)."""
    metrics = _busy_metrics()
    assert metrics.render() == metrics.render()


def test_build_info_carries_the_version_as_a_label() -> None:
    """``tokenrelay_build_info{version}`` is always 1."""
    assert parse(Metrics(version="9.9.9").render())["tokenrelay_build_info"].value(version="9.9.9") == 1


def test_build_info_defaults_to_the_installed_package_version() -> None:
    """Without an explicit version the distribution's own version is reported, never an empty label."""
    assert Metrics().version not in ("", None)

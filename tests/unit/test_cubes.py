"""aggregator.cubes: the default cube set, its lookup and description, and validation."""

from __future__ import annotations

import pytest

from aggregator.cubes import DEFAULT_CUBES, Cube, CubeSet, Scope
from gnomon.rollups.buckets import DEFAULT_WIDE_CUBES


def test_default_cubes_and_scopes() -> None:
    assert DEFAULT_CUBES.names == (
        "total", "page", "country", "region", "city", "device", "browser", "os", "source_medium", "channel",
        "event_name", "country_device", "channel_device", "page_device",
    )  # fmt: skip
    event_scoped = {c.name for c in DEFAULT_CUBES if c.scope is Scope.EVENT}
    assert event_scoped == {"page", "event_name", "page_device"}
    assert DEFAULT_CUBES.get("city").dimensions == ("country_name", "region", "city")
    assert DEFAULT_CUBES.get("page_device").dimensions == ("page_path", "device_category")


def test_wide_bucket_cubes_exist_in_the_default_set() -> None:
    # gnomon.rollups.buckets names its wide cubes; every one must be a cube the aggregator writes
    assert set(DEFAULT_WIDE_CUBES) <= set(DEFAULT_CUBES.names)


def test_find_answers_by_dimension_set_in_any_order() -> None:
    assert DEFAULT_CUBES.find(()) is DEFAULT_CUBES.get("total")
    assert DEFAULT_CUBES.find(["device_category", "country_name"]) is DEFAULT_CUBES.get("country_device")
    assert DEFAULT_CUBES.find({"city", "region", "country_name"}) is DEFAULT_CUBES.get("city")
    assert DEFAULT_CUBES.find(["page_path", "country_name"]) is None
    assert "page" in DEFAULT_CUBES and "nope" not in DEFAULT_CUBES


def test_describe_lists_every_combination() -> None:
    described = DEFAULT_CUBES.describe()
    assert len(described) == len(DEFAULT_CUBES) == 14
    assert described[0] == {"name": "total", "dimensions": [], "scope": "session"}
    assert {"name": "page_device", "dimensions": ["page_path", "device_category"], "scope": "event"} in described


def test_validation() -> None:
    with pytest.raises(ValueError, match="unknown dimension"):
        Cube.of("bad", "no_such_column")
    with pytest.raises(ValueError, match="repeats"):
        Cube.of("bad", "browser", "browser")
    with pytest.raises(ValueError, match="name"):
        Cube.of("")
    with pytest.raises(ValueError, match="used twice"):
        CubeSet((Cube.of("a", "browser"), Cube.of("a", "os")))
    with pytest.raises(ValueError, match="same dimensions"):
        CubeSet((Cube.of("a", "browser", "os"), Cube.of("b", "os", "browser")))
    with pytest.raises(KeyError, match="unknown cube"):
        DEFAULT_CUBES.get("nope")
    landing = Cube("landing_page", ("page_path",), Scope.SESSION)  # explicit scope: sessions by first page
    assert landing.scope is Scope.SESSION
    assert DEFAULT_CUBES.select(["page", "total"]).names == ("total", "page")
    assert DEFAULT_CUBES.columns() >= {"page_path", "name", "country_name", "city"}

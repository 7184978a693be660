"""Unit tests of the wire contract: topics, models, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pantau.core.contract import (
    CameraReading,
    ReadingBatch,
    SiteStatus,
    TopicKind,
    all_sites_filter,
    parse_site_topic,
    site_topic,
)


def test_topics_round_trip() -> None:
    """A site topic parses back into its site and kind."""
    topic = site_topic("s-1.a", TopicKind.READINGS)
    assert topic == "pantau/v1/sites/s-1.a/readings"
    assert parse_site_topic(topic) == ("s-1.a", TopicKind.READINGS)
    assert parse_site_topic("pantau/v1/sites/s1/other") is None
    assert parse_site_topic("pantau/v2/sites/s1/readings") is None
    assert parse_site_topic("x/pantau/v1/sites/s1/readings") is None


def test_filters_are_shared_on_request() -> None:
    """Collectors in one group split the load with $share."""
    assert all_sites_filter(TopicKind.STATUS) == "pantau/v1/sites/+/status"
    assert (
        all_sites_filter(TopicKind.READINGS, share_group="g")
        == "$share/g/pantau/v1/sites/+/readings"
    )


@pytest.mark.parametrize("bad", ["", "a b", "a,b", "a=b", "a/b", "+", "#", "é", "x" * 65, "-a"])
def test_ids_reject_unsafe_characters(bad: str) -> None:
    """Ids are safe as topic levels and tag values."""
    with pytest.raises(ValidationError):
        CameraReading(camera=bad, ts=1, up=True, cause="ok")


def test_batch_rejects_unknown_fields_and_non_finite() -> None:
    """Unknown fields and NaN are schema errors."""
    with pytest.raises(ValidationError):
        ReadingBatch.model_validate_json(b'{"v":1,"site":"s","district":"d","x":1}')
    with pytest.raises(ValidationError) as info:
        ReadingBatch.model_validate_json(
            b'{"v":1,"site":"s","district":"d","sensors":'
            b'[{"sensor":"a","kind":"t","ts":1,"value":NaN}]}'
        )
    assert info.value.errors()[0]["type"] == "finite_number"


def test_will_has_no_timestamp_but_birth_does() -> None:
    """The Last Will is composed before it fires, so its ts is None."""
    will = SiteStatus(site="s", district="d", online=False, ts=None, lat=0, lon=0, session=1)
    assert SiteStatus.model_validate_json(will.model_dump_json()) == will

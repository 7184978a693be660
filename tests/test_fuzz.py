"""Hostile input: 10,000 generated payloads through the collector's decoder never crash it,
never yield a malformed or injected point, and every rejection carries a known reason."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.decode import Accepted, DecodeLimits, Rejection, RejectReason, decode_message
from pantau.core.contract import TopicKind, site_topic
from tests.hostile import NOW_NS, check_line, messages

LIMITS = DecodeLimits(max_payload_bytes=262_144, max_future_ns=300 * 10**9)
FUZZ_EXAMPLES = 10_000
seen: Counter[str] = Counter()
corpus: list[tuple[str, bytes]] = []  # every 20th message, replayed through the real collector
pytestmark = pytest.mark.slow  # 10,000 examples take a minute or more: `make test`, not `make unit`


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(message=messages, status_topic=st.integers(0, 9), retain=st.booleans())
def test_decoder_survives_hostile_payloads(
    message: tuple[str, bytes], status_topic: int, retain: bool
) -> None:
    """Any bytes on any site topic: an accepted message maps only to well-formed points of
    known measurements whose ids are plain; anything else is a rejection with a reason."""
    site, payload = message
    if sum(seen.values()) % 20 == 0:
        corpus.append(message)
    kind = TopicKind.STATUS if status_topic == 0 else TopicKind.READINGS
    result = decode_message(
        site_topic(site, kind), payload, retain=retain, now_ns=NOW_NS, limits=LIMITS
    )
    if isinstance(result, Accepted):
        assert result.site == site
        for line in result.lines:
            check_line(line, site)
        seen["accepted"] += 1
    else:
        assert isinstance(result, Rejection) and result.reason in RejectReason
        assert result.detail is not None and len(result.detail) <= 200
        seen[result.reason.value] += 1


def test_the_fuzz_run_reached_both_sides() -> None:
    """The generated payloads were not all trivially rejected: many were accepted too."""
    if sum(seen.values()) < FUZZ_EXAMPLES:  # run alone: nothing to say about the other test
        test_decoder_survives_hostile_payloads()
    assert sum(seen.values()) >= FUZZ_EXAMPLES
    assert seen["accepted"] >= 100, seen
    assert {"bad_json", "schema", "site_mismatch", "oversized"} <= set(seen), seen


def hostile_corpus(size: int) -> list[tuple[str, bytes]]:
    """``size`` messages from the fuzz run (running it first if it has not run)."""
    if len(corpus) < size:
        test_decoder_survives_hostile_payloads()
    return corpus[:size]

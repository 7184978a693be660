"""``CameraNormal.adopt``: a person's acceptance makes the latest probe's view the learned view at
once (with the candidate probes of the same view), without a probe there is nothing to adopt."""

from __future__ import annotations

import numpy as np

from edge_agent.probes import view
from edge_agent.probes.picture import CameraNormal, Keyframe


def _view(seed: int) -> view.View:
    """A random structure (two seeds: two unrelated views)."""
    blocks = np.random.default_rng(seed).uniform(0, 255, (22, 40)).astype(np.float16)
    found = view.signature(blocks)
    assert found is not None
    return found


def _keyframe(seen: view.View) -> Keyframe:
    return Keyframe(luma=100.0, sharpness=500.0, blocks=np.zeros((1, 1), np.float16), view=seen)


def test_the_latest_view_becomes_the_reference_at_once() -> None:
    """Learned A, then B seen twice (candidates) and an unrelated C as candidate: adopting with
    B the latest keeps B's probes only, enough for the reference; B then scores 0, A high."""
    old, new, other = _view(1), _view(2), _view(3)
    normal = CameraNormal()
    for _ in range(3):
        normal.learn(100.0, 500.0, old)
    normal.candidate = [other, new]
    normal.last_keyframe = _keyframe(new)
    assert normal.adopt(limit=0.4, needed=3)
    assert [view.distance(v, new) for v in normal.views] == [0.0] * 3  # C is not B's view
    assert not normal.candidate
    reference = normal.view_reference(3)
    assert reference is not None
    assert view.distance(new, reference) == 0.0
    score = view.distance(old, reference)
    assert score is not None and score > 0.4


def test_nothing_to_adopt_before_a_probe() -> None:
    """No keyframe seen since the start: False, the normal unchanged."""
    normal = CameraNormal()
    assert not normal.adopt(limit=0.4, needed=3)
    assert not normal.views

"""False "view changed" and missed ones over many probes of the natural scenes: a minute of the
road by day and a minute by night (traffic crossing, headlights), judged two keyframes at a time
as the probe judges them, against the view learned from three daytime probes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import pytest

from edge_agent.probes.picture import (
    CameraNormal,
    Keyframe,
    StreamThresholds,
    Verdict,
    judge,
    luma_plane,
    measure,
)
from pantau.core.contract import StreamFault
from simulators.scenes import Scene, encode

SIZE = (640, 360)
SECONDS = {Scene.MOVING: 60.0, Scene.NIGHT: 60.0, Scene.TURNED: 8.0, Scene.COVERED: 8.0}


def keyframes(path: Path) -> list[Keyframe]:
    """Every keyframe of ``path``, measured as the probe measures it."""
    found = []
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video.codec_context.skip_frame = "NONKEY"
        for packet in container.demux(video):
            found.extend(measure(luma_plane(frame)) for frame in packet.decode())
    return found


@pytest.mark.slow  # encodes 136 s of 640x360 video
def test_day_and_night_are_not_a_changed_view_turned_and_covered_are(tmp_path: Path) -> None:
    """0 of 30 probes by day or night say view_changed (largest score well under the 0.4
    threshold); every probe of the turned and covered camera does."""
    limits = StreamThresholds()

    def make(scene: Scene) -> list[Keyframe]:
        path = encode(scene, tmp_path / f"{scene}.mkv", size=SIZE, seconds=SECONDS[scene])
        return keyframes(path)

    with ThreadPoolExecutor(2) as pool:
        seen = dict(zip(SECONDS, pool.map(make, SECONDS), strict=True))
    normal = CameraNormal()
    for first in seen[Scene.MOVING][: limits.baseline_probes]:
        learned = judge([first], thresholds=limits, normal=normal, previous=None)
        assert learned.luma is not None and learned.sharpness is not None
        normal.learn(learned.luma, learned.sharpness, learned.seen)

    def probes(scene: Scene) -> list[Verdict]:
        frames = seen[scene]
        pairs = zip(frames[::2], frames[1::2], strict=False)
        return [judge(list(p), thresholds=limits, normal=normal, previous=None) for p in pairs]

    for scene in (Scene.MOVING, Scene.NIGHT):
        verdicts = probes(scene)
        assert len(verdicts) >= 14
        flagged = [v.detail for v in verdicts if StreamFault.VIEW_CHANGED in v.faults]
        assert flagged == [], (scene, flagged)
        largest = max(v.view_score or 0.0 for v in verdicts)
        assert largest < limits.view_change / 2, (scene, largest)
    for scene in (Scene.TURNED, Scene.COVERED):
        verdicts = probes(scene)
        assert verdicts and all(StreamFault.VIEW_CHANGED in v.faults for v in verdicts), scene

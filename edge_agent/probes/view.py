"""What a camera looks at: a keyframe's coarse structure, and how far it is from a learned view.

The structure is the sign pattern of luma differences between neighbouring cells of a fixed
18x32 grid (cell means, so any frame size gives the same grid): which of two neighbouring areas
is brighter. That survives any monotonic change of lighting (day and night, a gain change, a
night curve), and a car or a headlight changes only the few cells it covers; a camera turned
away or covered changes most of them. Differences are scaled by their median size, so the
learned reference (the element-wise median of healthy keyframes) weighs only the cells where the
reference view has a clear edge.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

View = npt.NDArray[np.float16]
GRID = (18, 32)  # cells (rows, columns): a 1080p cell is 60x60 pixels, a 360p one 20x20
MIN_CELLS = 4  # a picture of fewer blocks a side has no view to judge
CLIP = 4.0  # scaled differences beyond this many median sizes count as this many (glare)
CONFIDENT = 0.7  # reference differences smaller than this (in median sizes) are not judged


def _cells(blocks: npt.NDArray[np.float16]) -> npt.NDArray[np.float32] | None:
    """``blocks`` (a keyframe's 16x16 block means) averaged into the ``GRID`` (into each block,
    for a picture too small for it); None below 64x64 pixels."""
    height, width = blocks.shape
    if height < MIN_CELLS or width < MIN_CELLS:
        return None
    rows = np.linspace(0, height, min(GRID[0], height) + 1).astype(int)
    cols = np.linspace(0, width, min(GRID[1], width) + 1).astype(int)
    values = blocks.astype(np.float32)
    sums = np.add.reduceat(np.add.reduceat(values, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float32)
    cells: npt.NDArray[np.float32] = (sums / counts).astype(np.float32)
    return cells


def signature(blocks: npt.NDArray[np.float16]) -> View | None:
    """The keyframe's structure: neighbour differences in median sizes, clipped to ``CLIP``."""
    cells = _cells(blocks)
    if cells is None:
        return None
    diffs = np.concatenate(
        [(cells[:, 1:] - cells[:, :-1]).ravel(), (cells[1:, :] - cells[:-1, :]).ravel()]
    )
    scale = float(np.median(np.abs(diffs))) + 1e-3
    return np.clip(diffs / scale, -CLIP, CLIP).astype(np.float16)


def reference(views: list[View]) -> View | None:
    """The element-wise median of learned views (a passing car is in few of them)."""
    if not views:
        return None
    return np.median(np.stack([v.astype(np.float32) for v in views]), axis=0).astype(np.float16)


def distance(view: View, ref: View) -> float | None:
    """0 (the same view) to 1 (unrelated): twice the share of the reference's clear edges whose
    direction the keyframe does not have (an unrelated picture gets about half of them right).
    None when the two cannot be compared (size changed) or the reference has no clear edges."""
    if view.shape != ref.shape:
        return None
    judged = np.abs(ref.astype(np.float32)) > CONFIDENT
    if not judged.any():
        return None
    differ = np.sign(view[judged].astype(np.float32)) != np.sign(ref[judged].astype(np.float32))
    return min(1.0, 2 * float(differ.mean()))

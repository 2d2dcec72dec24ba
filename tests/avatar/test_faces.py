"""The DiceBear training faces: rendered deterministically, cached, and each style licensed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.faces import build_faces, licence_of, render_face


def test_rendered_training_faces_are_deterministic_and_licensed(tmp_path: Path) -> None:
    face = render_face("lorelei", "seed-1")
    assert face.shape == (64, 64, 3) and face.dtype == np.uint8 and face.std() > 10
    assert np.array_equal(face, render_face("lorelei", "seed-1"))
    images, labels = build_faces(("lorelei", "thumbs"), 6, seed=3, cache_dir=tmp_path)
    assert images.shape == (6, 64, 64, 3) and list(labels) == [0, 1, 0, 1, 0, 1]
    cached, _ = build_faces(("lorelei", "thumbs"), 6, seed=3, cache_dir=tmp_path)
    assert np.array_equal(images, cached) and len(list(tmp_path.glob("faces-*.npz"))) == 1
    assert licence_of("lorelei").licence == "CC0 1.0" and licence_of("micah").licence == "CC BY 4.0"
    with pytest.raises(ValueError, match="unknown DiceBear style"):
        render_face("no-such-style", "x")

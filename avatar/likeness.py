"""A face found from a picture: square it, shrink it to the generator's 64 px, encode, refine.

The picture is only ever an in-memory image here; what comes out is a face code (see
`Generator.code`) and a style, which the renderer draws, varies, restyles and morphs like the
latent of any other face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps

from avatar.checkpoint import LoadedEncoder, LoadedGenerator
from avatar.encoder import find_face
from avatar.quality import to_tensor

INPUT_SIZE = 64
REFINE_STEPS = 40


@dataclass(frozen=True, slots=True)
class Likeness:
    latent: np.ndarray
    style: str
    ssim: float
    """How much the generator's face looks like the (64 px) picture: 1 is identical."""


def face_input(picture: Image.Image) -> torch.Tensor:
    """The centre square of the picture at 64 px, transparency on white: (1, 3, 64, 64) in [-1, 1]."""
    picture = ImageOps.exif_transpose(picture)
    rgba = picture.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    square = ImageOps.fit(canvas.convert("RGB"), (INPUT_SIZE, INPUT_SIZE), Image.Resampling.LANCZOS)
    return to_tensor(np.array(square)[None])


class FaceFinder:
    """The encoder paired with the generator it was trained against (their styles must agree)."""

    def __init__(self, loaded: LoadedGenerator, encoder: LoadedEncoder, steps: int = REFINE_STEPS) -> None:
        if encoder.styles != loaded.styles:
            raise ValueError(f"the face encoder knows styles {encoder.styles}, the generator {loaded.styles}")
        self.loaded = loaded
        self.encoder = encoder.encoder
        self.steps = steps

    def find(self, picture: Image.Image) -> Likeness:
        found = find_face(self.loaded.generator, self.encoder, face_input(picture), steps=self.steps)
        return Likeness(found.code.numpy().astype(np.float32), self.loaded.styles[found.style], found.ssim)

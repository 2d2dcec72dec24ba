"""Turning generator output into pictures people want to look at: upscaled PNGs, bordered grids, GIF morphs."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from avatar.checkpoint import LoadedGenerator
from avatar.faces import PIXEL_STYLES

DISPLAY_SIZE = 256
BORDER = 4
BORDER_COLOUR = (255, 255, 255)


class UnknownStyle(ValueError):
    def __init__(self, style: str, styles: tuple[str, ...]) -> None:
        super().__init__(f"unknown style {style!r}; choose one of: {', '.join(styles)}")


def to_images(batch: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> RGB images."""
    arrays = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a) for a in arrays]


def upscale(image: Image.Image, style: str, size: int = DISPLAY_SIZE) -> Image.Image:
    """Display size: nearest neighbour keeps pixel art crisp; Lanczos smooths the drawn styles."""
    method = Image.Resampling.NEAREST if style in PIXEL_STYLES else Image.Resampling.LANCZOS
    return image.resize((size, size), method)


def grid(images: list[Image.Image], cols: int, border: int = BORDER) -> Image.Image:
    """Images side by side in rows of `cols`, with a thin border around and between them."""
    w, h = images[0].size
    rows = -(-len(images) // cols)
    sheet = Image.new("RGB", (cols * w + (cols + 1) * border, rows * h + (rows + 1) * border), BORDER_COLOUR)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        sheet.paste(image, (border + c * (w + border), border + r * (h + border)))
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    """PNG at zlib's default level: `optimize=True` takes several times as long for barely smaller files."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gif_bytes(frames: list[Image.Image], frame_ms: int = 80) -> bytes:
    """A looping GIF that plays forward then back, so the morph never jumps."""
    sequence = frames + frames[-2:0:-1]
    buffer = io.BytesIO()
    sequence[0].save(buffer, format="GIF", save_all=True, append_images=sequence[1:], duration=frame_ms, loop=0,
                     disposal=2)
    return buffer.getvalue()


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: Gaussian latents keep their norm along the path, so faces stay sharp."""
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


class FaceRenderer:
    """Seeded latents in, upscaled face images out, from one loaded generator."""

    def __init__(self, loaded: LoadedGenerator) -> None:
        self.loaded = loaded
        self.nz = loaded.generator.cfg.nz

    @property
    def styles(self) -> tuple[str, ...]:
        return self.loaded.styles

    def style_index(self, style: str) -> int:
        if style not in self.loaded.styles:
            raise UnknownStyle(style, self.loaded.styles)
        return self.loaded.styles.index(style)

    def latent(self, seed: int) -> np.ndarray:
        """The latent for a seed: the same seed always gives the same face."""
        return np.random.default_rng(seed).standard_normal(self.nz).astype(np.float32)

    def faces(self, latents: list[np.ndarray], style: str, size: int = DISPLAY_SIZE) -> list[Image.Image]:
        """One batch through the generator (no grad), each face upscaled for display."""
        index = self.style_index(style)
        with torch.inference_mode():
            z = torch.from_numpy(np.stack(latents))
            out = self.loaded.generator(z, torch.full((len(latents),), index, dtype=torch.long))
        return [upscale(image, style, size) for image in to_images(out)]

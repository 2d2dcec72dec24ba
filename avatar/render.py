"""Turning generator output into pictures people want to look at: upscaled PNGs, bordered grids, GIF morphs.

Drawn styles go through the learned 4× upscaler (64 -> 256 px) when one is loaded, then any other
display size is a Lanczos resize of that; pixel art is enlarged with nearest neighbour, which is
exact for it.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from avatar.checkpoint import LoadedGenerator
from avatar.faces import PIXEL_STYLES
from avatar.upscale import Upscaler, fast_inference

DISPLAY_SIZE = 256
VARIATION_SPREAD = 0.55
BORDER = 4
BORDER_COLOUR = (255, 255, 255)


class UnknownStyle(ValueError):
    def __init__(self, style: str, styles: tuple[str, ...]) -> None:
        super().__init__(f"unknown style {style!r}; choose one of: {', '.join(styles)}")


def to_images(batch: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> RGB images."""
    arrays = batch.add(1).mul_(127.5).clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    return [Image.fromarray(a) for a in arrays]


def upscale(image: Image.Image, style: str, size: int = DISPLAY_SIZE) -> Image.Image:
    """A resize to display size where the learned upscaler is not used (pixel art, which nearest
    neighbour keeps crisp; sizes other than its 256 px; no upscaler loaded): Lanczos otherwise."""
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
    """Latents in, upscaled face images out, from one loaded generator (and upscaler).

    A latent is either a z (what a seed gives) or a face code (what `/avatar like` finds); both are
    drawn, varied and morphed here, so the rest of the bot need not tell them apart.
    """

    def __init__(self, loaded: LoadedGenerator, upscaler: Upscaler | None = None) -> None:
        self.loaded = loaded
        self.upscaler = upscaler
        self.nz = loaded.generator.cfg.nz
        self.code_dim = loaded.generator.code_dim

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

    def from_bytes(self, blob: bytes) -> np.ndarray | None:
        """A stored latent (float32 bytes), or None when it fits neither kind (another model's)."""
        if len(blob) not in (4 * self.nz, 4 * self.code_dim):
            return None
        return np.frombuffer(blob, dtype=np.float32).copy()

    def _code(self, latent: np.ndarray) -> np.ndarray:
        if latent.shape == (self.code_dim,):
            return latent
        with torch.inference_mode():
            return self.loaded.generator.code(torch.from_numpy(latent)[None])[0].numpy()

    def variations(self, latent: np.ndarray, rng: np.random.Generator, count: int = 4) -> list[np.ndarray]:
        """Faces near `latent`: a z moved at random and brought back to its norm (so it stays a typical
        face), a code moved by the code of such a step."""
        out = []
        for _ in range(count):
            step = VARIATION_SPREAD * rng.standard_normal(self.nz).astype(np.float32)
            if latent.shape == (self.nz,):
                moved = latent + step
                out.append((moved * np.linalg.norm(latent) / np.linalg.norm(moved)).astype(np.float32))
            else:
                out.append((latent + self._code(step)).astype(np.float32))
        return out

    def path(self, start: np.ndarray, end: np.ndarray, frames: int) -> list[np.ndarray]:
        """A morph's latents: slerp between two z, a straight line between codes."""
        steps = np.linspace(0.0, 1.0, frames)
        if start.shape == end.shape == (self.nz,):
            return [slerp(start, end, t).astype(np.float32) for t in steps]
        a, b = self._code(start), self._code(end)
        return [((1 - t) * a + t * b).astype(np.float32) for t in steps]

    def faces(self, latents: list[np.ndarray], style: str, size: int = DISPLAY_SIZE) -> list[Image.Image]:
        """One batch through the generator (no grad), each face upscaled for display."""
        index = self.style_index(style)
        codes = torch.from_numpy(np.stack([self._code(latent) for latent in latents]))
        with torch.inference_mode(), fast_inference():
            out = self.loaded.generator.draw(codes, torch.full((len(latents),), index, dtype=torch.long)).float()
            if self.upscaler is not None and style not in PIXEL_STYLES and size > out.shape[-1]:
                out = self.upscaler.upscale(out, self.upscaler.style_ids([style] * len(out)))
        return [image if image.size == (size, size) else upscale(image, style, size) for image in to_images(out)]

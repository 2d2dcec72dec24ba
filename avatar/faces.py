"""The training faces: DiceBear styles rendered to 64×64 RGB, with their licences.

DiceBear's style definitions (dicebear-styles) are rasterized by resvg; each face is composited on
a pastel background picked from its seed, so the data set is deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image

# CC0 styles first; the CC BY 4.0 ones are credited in the README and the model card.
DEFAULT_STYLES = ("lorelei", "notionists", "open-peeps", "thumbs", "pixel-art", "adventurer", "micah", "big-smile")
PIXEL_STYLES = frozenset({"pixel-art"})
BACKGROUNDS = ("#b6e3f4", "#c0aede", "#d1d4f9", "#ffd5dc", "#ffdfbf", "#c1f0d0", "#fdf3b0", "#e8e8e8")


@dataclass(frozen=True, slots=True)
class StyleLicence:
    style: str
    licence: str
    url: str
    credit: str


@cache
def style_definition(style: str) -> dict:
    """The style's JSON definition from dicebear-styles; ValueError for an unknown name."""
    resource = files("dicebear_styles").joinpath(f"{style}.json")
    if not resource.is_file():
        raise ValueError(f"unknown DiceBear style {style!r}")
    return json.loads(resource.read_text("utf-8"))


def licence_of(style: str) -> StyleLicence:
    """The licence the package declares for a style (read, not assumed)."""
    meta = style_definition(style).get("meta", {}).get("license", {})
    return StyleLicence(style, meta.get("name", "unknown"), meta.get("url", ""), meta.get("text", ""))


@cache
def _style(style: str):  # noqa: ANN202 - dicebear.Style; parsing a definition is the slow part
    from dicebear import Style

    return Style(style_definition(style))


def render_face(style: str, seed: str, size: int = 64) -> np.ndarray:
    """One face as an RGB uint8 array (size × size × 3)."""
    from dicebear import Avatar
    import resvg_py

    svg = Avatar(_style(style), {"seed": seed, "size": size}).to_string()
    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    face = Image.open(io.BytesIO(bytes(png))).convert("RGBA")
    colour = BACKGROUNDS[int(hashlib.sha256(seed.encode()).hexdigest(), 16) % len(BACKGROUNDS)]
    canvas = Image.new("RGBA", face.size, colour)
    canvas.alpha_composite(face)
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)


def build_faces(styles: tuple[str, ...], count: int, seed: int = 0, size: int = 64,
                cache_dir: Path | None = None, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`count` faces spread evenly over `styles`: (images N×size×size×3 uint8, style labels N).

    Rendered once and cached as .npz under `cache_dir` (keyed by the arguments).
    """
    for style in styles:
        style_definition(style)
    key = hashlib.sha256(json.dumps([styles, count, seed, size]).encode()).hexdigest()[:16]
    cached = cache_dir / f"faces-{key}.npz" if cache_dir else None
    if cached is not None and cached.exists():
        data = np.load(cached)
        return data["images"], data["labels"]
    from tqdm import tqdm

    labels = np.arange(count) % len(styles)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in tqdm(range(count), desc="rendering faces", disable=not progress, unit="img"):
        images[i] = render_face(styles[labels[i]], f"{seed}-{i}", size)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, labels=labels)
        tmp.replace(cached)
    return images, labels

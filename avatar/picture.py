"""A picture a user uploaded, read safely from bytes in memory (for `/avatar like`).

Only the four formats people send (PNG, JPEG, WebP, GIF) are tried, so no other PIL decoder ever
sees untrusted bytes; the size in pixels is read from the header and checked before any pixel is
decoded, since a file of a few KB can claim gigapixels. Nothing is written to disk.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MIN_SIDE = 16
NOT_A_PICTURE = "that file is not a picture I can read (PNG, JPEG, WebP or GIF)"
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)
"""What PIL raises on bytes that are not (or not wholly) an image of its formats."""
_BOMB = (Image.DecompressionBombError, Image.DecompressionBombWarning)
"""PIL's own guard: an error past twice its limit, a warning past it (an error where warnings are)."""


class PictureError(ValueError):
    """The upload is not a picture we read; the message is fit for the user."""


def refuse_oversize(size: int, max_bytes: int) -> None:
    """PictureError when `size` bytes (declared or received) is over the limit."""
    if size > max_bytes:
        raise PictureError(f"that picture is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB")


def read_picture(data: bytes, max_bytes: int, max_pixels: int) -> Image.Image:
    """The picture in `data`, decoded in memory (a GIF's first frame), or PictureError saying why not."""
    if not data:
        raise PictureError("that file is empty")
    refuse_oversize(len(data), max_bytes)
    too_many_pixels = PictureError(f"that picture has too many pixels; the limit is {max_pixels / 1e6:g} megapixels")
    try:
        picture = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except _BOMB:
        raise too_many_pixels from None
    except _UNREADABLE:
        raise PictureError(NOT_A_PICTURE) from None
    width, height = picture.size
    if width * height > max_pixels:
        raise too_many_pixels
    if min(width, height) < MIN_SIDE:
        raise PictureError(f"that picture is only {width}×{height} px; send one at least {MIN_SIDE} px on each side")
    try:
        picture.load()
    except _BOMB:
        raise too_many_pixels from None
    except _UNREADABLE:
        raise PictureError(NOT_A_PICTURE) from None
    return picture

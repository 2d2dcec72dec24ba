"""Files of the face GAN: the shipped generator (EMA, fp16) and resumable training checkpoints.

Both are written to a temporary file and renamed, so a file is either complete or absent; both
load with `weights_only=True` (plain tensors and values, no pickled code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from avatar.model import GanConfig, Generator
from twinbot.atomic import save_torch_atomically

FORMAT = "twinbot-face-gan/1"


class WeightsError(Exception):
    """A generator file is missing, corrupt or of another format; the message names the file."""


@dataclass(frozen=True)
class LoadedGenerator:
    generator: Generator
    styles: tuple[str, ...]
    model_id: str
    meta: dict


def save_generator(path: Path, generator: Generator, styles: tuple[str, ...], meta: dict) -> None:
    """The shipped form: fp16 weights of the (EMA) generator, its config, style names and metadata."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in generator.state_dict().items()}
    save_torch_atomically({"format": FORMAT, "config": generator.cfg.to_dict(), "styles": list(styles), "meta": meta,
                 "state_dict": state}, path)


def load_generator(path: Path, model_id: str | None = None) -> LoadedGenerator:
    """A ready-to-sample generator (eval mode, fp32), or WeightsError saying what is wrong."""
    if not path.is_file():
        raise WeightsError(f"face generator weights not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"face generator weights are corrupt or unreadable: {path} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WeightsError(f"not a twinbot face generator file: {path}")
    try:
        cfg = GanConfig(**data["config"])
        generator = Generator(cfg)
        generator.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in data["state_dict"].items()})
    except Exception as exc:
        raise WeightsError(f"face generator weights do not fit the model: {path} ({exc})") from None
    styles = tuple(data["styles"])
    if len(styles) != cfg.n_styles:
        raise WeightsError(f"face generator file lists {len(styles)} styles for {cfg.n_styles}: {path}")
    return LoadedGenerator(generator.eval(), styles, model_id or f"{path.stem}", data.get("meta", {}))

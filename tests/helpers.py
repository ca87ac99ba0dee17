"""Small helpers shared by the test modules."""

import io

import ipywidgets as widgets
import numpy as np
import PIL.Image
import torch
import traitlets

from attention_lab.models.transformer import TinyTransformer


def pixels(png: bytes) -> np.ndarray:
    """A PNG's pixels as an ``(height, width, 3)`` int array."""
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def image_widget(panel: widgets.VBox) -> widgets.Image:
    """The one figure of an explorer panel."""
    (image,) = [child for child in panel.children if isinstance(child, widgets.Image)]
    return image


def tiny_transformer(num_steps: int = 6, num_heads: int = 2, seed: int = 0) -> TinyTransformer:
    """An untrained 2-layer encoder over digits, seeded."""
    torch.manual_seed(seed)
    return TinyTransformer(vocab_size=10, num_hiddens=32, ffn_num_hiddens=64,
                           num_heads=num_heads, num_blks=2, max_len=num_steps)


class Knob(widgets.DOMWidget):
    """A control that holds any value (no range, no type), for driving a panel from a test."""

    value = traitlets.Any()


def knobs(**values: object) -> dict[str, Knob]:
    """One :class:`Knob` per keyword, set to its value."""
    return {name: Knob(value=value) for name, value in values.items()}

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


class FakeDateModel(torch.nn.Module):
    """A stand-in with chapter 08's model protocol (``translate``, ``attention_maps``): seeded
    random weights that respect the padding and causal masks, output read from the input."""

    def __init__(self, num_layers: int = 2, num_heads: int = 2):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))  # a parameter, so it has a device
        self.shape = (num_layers, num_heads)
        self.maps: dict[str, torch.Tensor] = {}

    def translate(self, src: torch.Tensor, src_valid_lens: torch.Tensor) -> torch.Tensor:
        from attention_lab.data import dates

        (batch, length), steps = src.shape, dates.ISO_LENGTH
        g = torch.Generator().manual_seed(int(src.sum()))
        pad = torch.arange(length) >= src_valid_lens.cpu()[:, None, None, None, None]
        cross = torch.randn(batch, *self.shape, steps, length, generator=g)
        future = torch.ones(steps, steps, dtype=torch.bool).triu(1)
        causal = torch.randn(batch, *self.shape, steps, steps, generator=g)
        self.maps = {"cross": cross.masked_fill(pad, -torch.inf).softmax(-1).to(src.device),
                     "decoder": causal.masked_fill(future, -torch.inf).softmax(-1)}
        digits = [dates.VOCAB.index(str(int(v) % 10)) + 2 for v in src[0, :8].tolist()]
        ids = torch.tensor(digits[:4] + [dates.VOCAB.index("-") + 2] + digits[4:6]
                           + [dates.VOCAB.index("-") + 2] + digits[6:8])
        return ids.repeat(batch, 1).to(src.device)  # (B, 10)

    def attention_maps(self) -> dict[str, torch.Tensor]:
        return self.maps

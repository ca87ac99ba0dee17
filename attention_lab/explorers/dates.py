"""Chapter 08's explorer: one head's cross- and causal self-attention while a date is decoded."""

from __future__ import annotations

import html
from typing import Protocol

import matplotlib
import numpy as np
import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.ticker import FuncFormatter

from attention_lab.data import dates
from attention_lab.fonts import register_cjk_font
from attention_lab.layout import freeze_layout
from attention_lab.panel import Explorer, check_choice, check_figsize, check_int

STEPS = dates.ISO_LENGTH  # characters the decoder writes


class DateModel(Protocol):
    """What the explorer needs of a model (chapter 08's ``DateTransformer`` has it).

    ``translate(src (B, T), src_valid_lens (B,))`` returns the greedy output ids ``(B, 10)``;
    ``attention_maps()`` then returns the weights of that call, ``(B, L, h, Tq, Tk)`` each,
    under ``"cross"`` (``Tq = 10``, ``Tk = T``) and ``"decoder"`` (``10 x 10``, causal).
    ``parameters()`` is a module's (the device is read from it).
    """

    def translate(self, src: torch.Tensor, src_valid_lens: torch.Tensor) -> torch.Tensor: ...

    def attention_maps(self) -> dict[str, torch.Tensor]: ...

    def parameters(self): ...


class DateAttentionExplorer(Explorer):
    """Step through the greedy decoding of a typed date: one layer and head at a time.

    Left, cross-attention (rows: output characters written so far, columns: the
    input's characters, ``MAX_LEN`` columns of which the text fills the first);
    right, the decoder's causal self-attention (columns: what each position reads,
    ``<bos>`` then the output).  ``step`` (1 .. 10) is how many characters are
    written: later rows stay empty, and a frame marks the row of the character
    written at ``step``.  Grey cells carry no weight: masked (the future), past
    the input's end, or not written yet.  ``layer`` and ``head`` count from 1.
    ``text`` must be in :data:`attention_lab.data.dates.VOCAB` and in a supported
    format (:func:`attention_lab.data.dates.parse`); anything else is refused
    with a ``ValueError`` and the figure keeps its last picture.
    """

    def __init__(self, model: DateModel, text: str = "Tuesday, 1 December 2026",
                 layer: int = 2, head: int = 1, step: int = STEPS,
                 figsize: tuple[float, float] = (10.0, 3.8)):
        if not all(callable(getattr(model, name, None))
                   for name in ("translate", "attention_maps", "parameters")):
            raise TypeError("model must have translate, attention_maps and parameters (chapter "
                            f"08's DateTransformer), got {type(model).__name__}")
        figsize = check_figsize(figsize)
        self.model = model
        self.device = next(model.parameters()).device
        self.families = register_cjk_font()
        self.text, self.iso, self.fmt = self._check_text(text)
        self.output, self.maps = self._attend(self.text)
        self.num_layers, self.num_heads = self.maps["cross"].shape[:2]
        self.layer = check_choice("layer", layer, range(1, self.num_layers + 1))
        self.head = check_choice("head", head, range(1, self.num_heads + 1))
        self.step = check_int("step", step, 1, STEPS)

        self.fig = Figure(figsize=figsize, layout="constrained")
        ax_cross, ax_self = self.fig.subplots(
            1, 2, gridspec_kw={"width_ratios": [dates.MAX_LEN, STEPS + 4]})
        cmap = matplotlib.colormaps["Reds"].with_extremes(bad="0.88")
        self.cross_image = ax_cross.imshow(np.full((STEPS, dates.MAX_LEN), np.nan), cmap=cmap,
                                           vmin=0.0, vmax=1.0, interpolation="nearest")
        self.self_image = ax_self.imshow(np.full((STEPS, STEPS), np.nan), cmap=cmap, vmin=0.0,
                                         vmax=1.0, interpolation="nearest")
        self.labels: dict[str, list[str]] = {}  # what the tick formatters show, per axis
        self.tick_labels: list[Text] = []
        for key, axis, count in (("input", ax_cross.xaxis, dates.MAX_LEN),
                                 ("output", ax_cross.yaxis, STEPS),
                                 ("reads", ax_self.xaxis, STEPS),
                                 ("self_output", ax_self.yaxis, STEPS)):
            self.labels[key] = [""] * count
            axis.set_ticks(range(count))
            axis.set_major_formatter(FuncFormatter(
                lambda x, _pos, key=key: self.labels[key][round(x)]))
            axis.set_tick_params(labelsize=8)
            for label in axis.get_ticklabels():
                label.set_fontfamily(self.families)
            self.tick_labels += axis.get_ticklabels()
        ax_self.xaxis.set_tick_params(labelrotation=90)
        ax_cross.set(xlabel="input character (key)", ylabel="output written (query)")
        ax_self.set(xlabel="decoder reads (key)", ylabel="output written (query)")
        self.rows = [ax.add_patch(Rectangle((-0.5, -0.5), width, 1, fill=False, lw=1.5,
                                            edgecolor="tab:blue"))
                     for ax, width in ((ax_cross, dates.MAX_LEN), (ax_self, STEPS))]
        self.cross_title = ax_cross.set_title(" ", fontsize=10)
        self.self_title = ax_self.set_title(" ", fontsize=10)
        self.suptitle = self.fig.suptitle(" ", fontsize=11, fontfamily=self.families)
        self.fig.colorbar(self.self_image, ax=[ax_cross, ax_self], shrink=0.8,
                          label="attention weight (grey: masked, or no character)")
        self._draw()
        freeze_layout(self.fig)

    @staticmethod
    def _check_text(text: object) -> tuple[str, str, str]:
        """``text``, its ISO date and its format, or the ValueError that says why not."""
        text = dates.check_text(text, "text")
        day, fmt = dates.parse(text)
        return text, dates.iso(day), fmt

    @torch.no_grad()
    def _attend(self, text: str) -> tuple[str, dict[str, np.ndarray]]:
        """The greedy output and the weights ``(L, h, Tq, Tk)`` of ``text``, as arrays."""
        src, src_valid_lens = dates.encode([text])  # (1, T), (1,)
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        ids = self.model.translate(src.to(self.device), src_valid_lens.to(self.device))  # (1, 10)
        maps = self.model.attention_maps()
        if hasattr(self.model, "train"):
            self.model.train(was_training)
        return dates.decode(ids[0].cpu()), {
            name: maps[name][0].detach().float().cpu().numpy() for name in ("cross", "decoder")}

    def _draw(self) -> None:
        layer, head, step, n = self.layer - 1, self.head - 1, self.step, len(self.text)
        cross = np.full((STEPS, dates.MAX_LEN), np.nan)  # (10, MAX_LEN): grey where no weight
        cross[:step, :n] = self.maps["cross"][layer, head, :step, :n]
        decoder = np.full((STEPS, STEPS), np.nan)  # (10, 10)
        written = self.maps["decoder"][layer, head, :step]  # (step, 10)
        decoder[:step] = np.where(np.tri(STEPS, dtype=bool)[:step], written, np.nan)
        self.cross_image.set_data(cross)
        self.self_image.set_data(decoder)
        for rectangle in self.rows:
            rectangle.set_y(step - 1.5)
        out = self.output
        self.labels["input"] = [*self.text, *[""] * (dates.MAX_LEN - n)]
        self.labels["output"] = self.labels["self_output"] = [
            *out[:step], *[""] * (STEPS - step)]
        self.labels["reads"] = [*("<bos>", *out[:step - 1]), *[""] * (STEPS - step)]
        texts = [*self.labels["input"], *self.labels["output"], *self.labels["reads"],
                 *self.labels["self_output"]]
        for label, value in zip(self.tick_labels, texts, strict=True):
            label.set_text(value)
        self.cross_title.set_text(f"cross-attention, layer {self.layer} head {self.head}")
        self.self_title.set_text(f"causal self-attention, layer {self.layer} head {self.head}")
        verdict = "correct" if out == self.iso else f"should be {self.iso}"
        self.result = (f"{self.text} \u2192 {out[:step]}{'_' * (STEPS - step)} "
                       f"(step {step}: writes {out[step - 1]!r}; full output {out}, {verdict})")
        self.suptitle.set_text(self.result)

    def update(self, text: object = None, layer: object = None, head: object = None,
               step: object = None) -> Figure:
        """Check every value, then redraw: a new ``text`` is decoded again; ``layer``, ``head``
        (1-based) and ``step`` (1 .. 10) pick what is shown.  None keeps the current value."""
        checked = self._check_text(text) if text is not None else None
        layer = self.layer if layer is None else check_choice(
            "layer", layer, range(1, self.num_layers + 1))
        head = self.head if head is None else check_choice(
            "head", head, range(1, self.num_heads + 1))
        step = self.step if step is None else check_int("step", step, 1, STEPS)
        if checked is not None and checked[0] != self.text:
            self.output, self.maps = self._attend(checked[0])
            self.text, self.iso, self.fmt = checked
        self.layer, self.head, self.step = layer, head, step
        self._draw()
        return self.fig

    def changing_artists(self) -> list[Artist]:
        return [self.cross_image, self.self_image, *self.rows, *self.tick_labels,
                self.cross_title, self.self_title, self.suptitle]

    def frame_key(self) -> tuple:
        return self.text, self.layer, self.head, self.step, str(self.device)

    def caption(self) -> str:
        unseen = " (never seen in training)" if self.fmt == dates.UNSEEN_FORMAT else ""
        return (f"<b>{html.escape(self.result)}</b><br>format <code>{self.fmt}</code>{unseen}; "
                f"layer {self.layer}, head {self.head}")

    def caption_texts(self) -> dict[Text, str]:
        return {self.suptitle: ""}

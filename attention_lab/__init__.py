"""Attention Lab's machinery: everything the notebooks use beyond the teaching core.

The teaching core, :mod:`attention_utils` (masking, heatmaps, scoring,
multi-head attention, positional encoding), is what a learner reads; this
package builds on it and is never imported by it.  One concern per module:

- :mod:`attention_lab.panel`: the :class:`~attention_lab.panel.Explorer`
  contract, the widget panel that drives an explorer, the GPU toggle.
- :mod:`attention_lab.render`: the only code that draws figures into pixels
  (blitting, PNG encoding); :mod:`attention_lab.layout`: layouts and ticks that
  stay put, so a redraw touches few artists.
- :mod:`attention_lab.explorers`: one module per chapter's interactive figure.
- :mod:`attention_lab.models`: the toy models the chapters train.
- :mod:`attention_lab.data`: synthetic data sets and example inputs.
- :mod:`attention_lab.analysis`: statistics of attention maps (entropy, distance).
- :mod:`attention_lab.measure` and :mod:`attention_lab.benchmark`: timing and
  memory tools, and the benchmark harness behind ``make bench``.
"""

"""pytest set-up shared by the unit tests and strict nbval.

nbval already ignores a widget's model id; this also skips the rest of an
output that displays a widget (its text/plain is the widget's repr, which holds
its live state and timings), so a cell that shows an explorer or a tqdm bar is
compared on everything else it prints.
"""

from nbval.plugin import IPyNbCell

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_compare_outputs = IPyNbCell.compare_outputs


def _without_widgets(outputs: list[dict]) -> list[dict]:
    return [output for output in outputs if WIDGET_VIEW not in output.get("data", {})]


def _compare_outputs_without_widgets(self, test, ref, skip_compare=None):
    return _compare_outputs(self, _without_widgets(test), _without_widgets(ref), skip_compare)


IPyNbCell.compare_outputs = _compare_outputs_without_widgets

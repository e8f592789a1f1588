"""Interactive figures: sliders and dropdowns that redraw a matplotlib figure.

In Jupyter they are live ipywidgets; in the built HTML book the state is embedded, so the initial
figure shows. Chapters pass a ``draw(**values)`` function and the choices for each control.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt


def _control(name: str, spec: Any) -> W.Widget:
    if isinstance(spec, W.Widget):
        return spec
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(v, str) for v in spec):
        return W.Dropdown(options=list(spec), value=spec[0], description=name)
    if isinstance(spec, (list, tuple)):
        # A list of values: a slider over their positions, labelled with the values themselves.
        return W.SelectionSlider(options=list(spec), value=spec[0], description=name, continuous_update=False)
    raise TypeError(f"control {name!r}: give a widget or a list of choices, not {spec!r}")


def interactive_figure(draw: Callable[..., Any], **controls: Sequence[Any] | W.Widget) -> W.VBox:
    """A box of controls above an output that shows ``draw(**values)`` and redraws on every change.

    ``draw`` makes its figure with matplotlib (it may create it with :func:`lotterylib.plots.figure`).
    Each control is a list of choices (strings → dropdown, numbers → selection slider) or a widget.
    """
    widgets = {name: _control(name, spec) for name, spec in controls.items()}
    out = W.Output()

    def redraw(*_):
        out.clear_output(wait=True)
        with out:
            draw(**{k: w.value for k, w in widgets.items()})
            plt.show()

    for w in widgets.values():
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox(list(widgets.values())), out])


def sparsity_slider(fractions_kept: Sequence[float], description: str = "kept",
                    value: float | None = None) -> W.SelectionSlider:
    """A slider over fractions of weights kept, labelled as percentages, starting at ``value``."""
    options = [(f"{100 * f:.3g}%", f) for f in fractions_kept]
    return W.SelectionSlider(options=options, value=options[0][1] if value is None else value,
                             description=description, continuous_update=False)


def time_slider(iterations, description: str = "iteration") -> W.SelectionSlider:
    """A slider over recorded training iterations (e.g. a History's ``iterations``)."""
    options = [int(i) for i in iterations]
    return W.SelectionSlider(options=options, value=options[-1], description=description, continuous_update=False)


def choice_slider(options, value=None, description: str = "") -> W.SelectionSlider:
    """A slider over ``options`` starting at ``value`` (default: the last option)."""
    options = list(options)
    return W.SelectionSlider(options=options, value=options[-1] if value is None else value,
                             description=description, continuous_update=False)

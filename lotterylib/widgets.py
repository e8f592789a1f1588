"""Interactive figures: sliders and dropdowns that switch between figures of a ``draw`` function.

:func:`interactive_figure` runs ``draw`` once for every point of the grid of control choices and stores
each figure as a small PNG (a *frame*). Two views show the same frames:

* in a live Jupyter kernel, ipywidgets controls above an output that shows the frame of the chosen
  point (``draw`` runs afresh only for a value outside the grid, e.g. an ``IntSlider`` set off its step);
* for the static HTML book (no kernel, no network), a self-contained HTML snippet: a few lines of inline
  JavaScript swap the picture when a ``<input type=range>`` or ``<select>`` moves.

Both travel in one output (:class:`InteractiveFigure`'s mime bundle: the widget view and a
``text/html`` fallback). Jupyter shows the live widget; the book is configured (``book/_config.yml``,
``nb_mime_priority_overrides``) to show the HTML version. Chapters pass a ``draw(**values)`` function
and the choices of each control: keep the grid (the product of the numbers of choices) at most
:data:`MAX_FRAMES`.

The live output is set from the kernel (``Output.outputs``), never captured with ``with output:``.
Capturing makes a notebook runner without a browser (nbclient, which papermill and the book build use)
act as the Output widget's front end: it sends the captured outputs back to the kernel on the shell
channel while it waits on that same channel for the cell's reply, and now and then misses the reply
(jupyter/nbclient#312); the build then waits out the cell's whole time limit. Seen three times in five
clean builds of this book, every time on a cell with a slider.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import ipywidgets as W
import matplotlib.pyplot as plt

MAX_FRAMES = 60   # frames precomputed for the static page; more is slow to build and heavy to load
FRAME_DPI = 85    # resolution of the static frames (the live figure uses the notebook's own)


@dataclass(frozen=True)
class Control:
    """One control of the static view: ``labels[i]`` is shown for ``values[i]``; starts at ``index``."""

    name: str
    description: str
    labels: tuple[str, ...]
    values: tuple[Any, ...]
    index: int
    kind: str  # "range" (a slider) or "select" (a dropdown)


def _control(name: str, spec: Any) -> W.Widget:
    if isinstance(spec, W.Widget):
        return spec
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(v, str) for v in spec):
        return W.Dropdown(options=list(spec), value=spec[0], description=name)
    if isinstance(spec, (list, tuple)):
        # A list of values: a slider over their positions, labelled with the values themselves.
        return W.SelectionSlider(options=list(spec), value=spec[0], description=name, continuous_update=False)
    raise TypeError(f"control {name!r}: give a widget or a list of choices, not {spec!r}")


def _static_control(name: str, widget: W.Widget) -> Control:
    """The choices of a control widget: selection widgets (Dropdown, SelectionSlider, …) or IntSlider."""
    if hasattr(widget, "_options_values"):
        labels, values = tuple(widget._options_labels), tuple(widget._options_values)
        index = widget.index if widget.index is not None else 0
    elif isinstance(widget, W.IntSlider):
        values = tuple(range(widget.min, widget.max + 1, widget.step))
        labels = tuple(str(v) for v in values)
        index = values.index(widget.value) if widget.value in values else 0
    else:
        raise ValueError(f"control {name!r}: a {type(widget).__name__} has no finite list of choices to "
                         "precompute for the static book; pass a list of choices or a selection widget "
                         "(widgets.sparsity_slider, time_slider, choice_slider, Dropdown, SelectionSlider)")
    if not values:
        raise ValueError(f"control {name!r} has no choices")
    kind = "select" if isinstance(widget, (W.Dropdown, W.Select, W.RadioButtons, W.ToggleButtons)) else "range"
    return Control(name, widget.description or name, labels, values, index, kind)


def frame_count(controls: Sequence[Control]) -> int:
    """Number of frames of the static view: the product of the numbers of choices."""
    n = 1
    for c in controls:
        n *= len(c.values)
    return n


def render_frame(draw: Callable[..., Any], values: dict[str, Any], dpi: int = FRAME_DPI) -> bytes:
    """PNG bytes of the one figure that ``draw(**values)`` makes; the figure is closed afterwards.

    Deterministic for a deterministic ``draw`` (no timestamps or version strings in the file).
    """
    before = set(plt.get_fignums())
    try:
        draw(**values)
    except BaseException:
        for n in set(plt.get_fignums()) - before:
            plt.close(n)
        raise
    new = [n for n in plt.get_fignums() if n not in before]
    figs = [plt.figure(n) for n in new]
    if len(figs) != 1:
        for n in new:
            plt.close(n)
        raise ValueError(f"draw({values}) made {len(figs)} matplotlib figures; it should make exactly one "
                         "(e.g. with lotterylib.plots.figure)")
    buf = io.BytesIO()
    try:
        figs[0].savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(figs[0])
    return _compact_png(buf.getvalue())


def _compact_png(png: bytes) -> bytes:
    """The same picture with a 256-colour palette when that is smaller (typically 2-3x for plots)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return png
    img = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(png) else png


def render_frames(draw: Callable[..., Any], controls: Sequence[Control], dpi: int = FRAME_DPI) -> list[bytes]:
    """``draw`` on every point of the grid, row-major over ``controls`` (the last control varies fastest)."""
    n = frame_count(controls)
    if n > MAX_FRAMES:
        sizes = " × ".join(f"{len(c.values)} {c.name}" for c in controls)
        raise ValueError(f"interactive_figure: {sizes} = {n} frames to precompute for the static book, more "
                         f"than {MAX_FRAMES}; pass fewer choices to the controls")
    names = [c.name for c in controls]
    return [render_frame(draw, dict(zip(names, point)), dpi)
            for point in itertools.product(*(c.values for c in controls))]


# The script finds its own figure (the element that contains it), so the same snippet works several
# times on a page, from file:// and from a server; no eval, no network.
_SCRIPT = """(function () {
  var root = document.currentScript ? document.currentScript.parentNode : document.getElementById(%(id)s);
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var frames = JSON.parse(root.querySelector("script.lfig-frames").textContent);
  var inputs = root.querySelectorAll("[data-lfig-control]");
  var img = root.querySelector("img.lfig-image");
  function update() {
    var index = 0, alt = [];
    for (var i = 0; i < inputs.length; i++) {
      var el = inputs[i], k = parseInt(el.value, 10);
      var labels = JSON.parse(el.getAttribute("data-labels"));
      index = index * labels.length + k;
      var out = root.querySelector("output[data-for='" + el.getAttribute("data-lfig-control") + "']");
      if (out) { out.textContent = labels[k]; }
      alt.push(el.getAttribute("data-description") + " = " + labels[k]);
    }
    img.src = "data:image/png;base64," + frames[index];
    img.alt = "figure for " + alt.join(", ");
  }
  for (var i = 0; i < inputs.length; i++) {
    inputs[i].addEventListener("input", update);
    inputs[i].addEventListener("change", update);
  }
  update();
})();"""


def static_html(controls: Sequence[Control], frames: Sequence[bytes]) -> str:
    """A self-contained HTML snippet: the controls, the current frame, all frames and a tiny script."""
    if len(frames) != frame_count(controls):
        raise ValueError(f"{len(frames)} frames for a grid of {frame_count(controls)} points")
    encoded = [base64.b64encode(f).decode("ascii") for f in frames]
    digest = hashlib.sha1("".join(encoded).encode() + repr(controls).encode()).hexdigest()[:12]
    uid = f"lfig-{digest}"
    start = 0
    for c in controls:
        start = start * len(c.values) + c.index
    parts = [f'<div class="lotterylib-interactive" id="{uid}">',
             '<div class="lfig-controls" style="display:flex;flex-wrap:wrap;gap:0.4em 1.5em;align-items:center">']
    for j, c in enumerate(controls):
        cid = f"{uid}-{j}"
        desc = html.escape(c.description)
        common = (f'id="{cid}" data-lfig-control="{j}" data-description="{desc}" '
                  f'data-labels="{html.escape(json.dumps(list(c.labels)))}"')
        parts.append(f'<span class="lfig-control"><label for="{cid}">{desc}</label> ')
        if c.kind == "select":
            opts = "".join(f'<option value="{i}"{" selected" if i == c.index else ""}>{html.escape(lab)}</option>'
                           for i, lab in enumerate(c.labels))
            parts.append(f'<select {common}>{opts}</select>')
        else:
            parts.append(f'<input type="range" {common} min="0" max="{len(c.values) - 1}" step="1" '
                         f'value="{c.index}" style="vertical-align:middle"> '
                         f'<output data-for="{j}" for="{cid}">{html.escape(c.labels[c.index])}</output>')
        parts.append("</span>")
    alt = ", ".join(f"{c.description} = {c.labels[c.index]}" for c in controls)
    parts.append("</div>")
    parts.append(f'<img class="lfig-image" alt="figure for {html.escape(alt)}" style="max-width:100%" '
                 f'src="data:image/png;base64,{encoded[start]}">')
    parts.append(f'<script type="application/json" class="lfig-frames">{json.dumps(encoded)}</script>')
    parts.append(f"<script>{_SCRIPT % {'id': json.dumps(uid)}}</script>")
    parts.append("</div>")
    return "".join(parts)


class InteractiveFigure:
    """A figure with controls, shown live in Jupyter and as precomputed frames in the static book.

    ``widget`` is the live ipywidgets box, ``controls`` the static controls, ``frames`` the PNG bytes of
    every grid point (row-major over ``controls``) and ``html`` the static snippet.
    """

    def __init__(self, widget: W.VBox, controls: Sequence[Control], frames: Sequence[bytes]):
        self.widget, self.controls, self.frames = widget, tuple(controls), list(frames)
        self.html = static_html(self.controls, self.frames)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_() or {})
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self.html
        return bundle

    def __repr__(self) -> str:
        names = ", ".join(f"{c.name} ({len(c.values)} choices)" for c in self.controls)
        return f"<interactive figure: {names or 'no controls'}; {len(self.frames)} frames>"


def interactive_figure(draw: Callable[..., Any], **controls: Sequence[Any] | W.Widget) -> InteractiveFigure:
    """A box of controls above an output that shows ``draw(**values)`` for the chosen values.

    ``draw`` makes one figure with matplotlib (it may create it with :func:`lotterylib.plots.figure`).
    Each control is a list of choices (strings → dropdown, other values → selection slider) or a
    selection widget (:func:`sparsity_slider`, :func:`time_slider`, :func:`choice_slider`, a
    ``Dropdown``, an ``IntSlider``). ``draw`` is run once per point of the grid of choices (at most
    :data:`MAX_FRAMES` points, else ValueError); both the live widget and the static HTML version show
    these frames.
    """
    widgets = {name: _control(name, spec) for name, spec in controls.items()}
    static = [_static_control(name, w) for name, w in widgets.items()]
    frames = render_frames(draw, static)
    out = W.Output()

    def show(*_):
        values = {k: w.value for k, w in widgets.items()}
        index = grid_index(static, values)
        png = frames[index] if index is not None else render_frame(draw, values)
        alt = ", ".join(f"{c.description} = {c.labels[c.values.index(v)] if v in c.values else v}"
                        for c, v in zip(static, values.values()))
        # Set from the kernel, not captured with `with out:` (see the module's docstring).
        out.outputs = ({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(png).decode("ascii"),
                                 "text/plain": f"<figure for {alt}>"}},)

    for w in widgets.values():
        w.observe(show, names="value")
    show()
    return InteractiveFigure(W.VBox([W.HBox(list(widgets.values())), out]), static, frames)


def grid_index(controls: Sequence[Control], values: dict[str, Any]) -> int | None:
    """The frame of ``values`` (row-major over ``controls``), or None when a value is not on the grid."""
    index = 0
    for c in controls:
        if values[c.name] not in c.values:
            return None
        index = index * len(c.values) + c.values.index(values[c.name])
    return index


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

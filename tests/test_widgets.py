"""Interactive figures: the live widget and the static, precomputed HTML version share one draw()."""

import base64
import json
import re

import ipywidgets as W
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lotterylib import plots, widgets  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def draw(kept, name="a"):
    fig, ax = plots.figure(width=2, height=1.5)
    ax.plot([0, 1], [0, kept])
    ax.set_title(f"{name} {kept}")


def frames_in(html: str) -> list[bytes]:
    m = re.search(r'<script type="application/json" class="lfig-frames">(.*?)</script>', html)
    assert m, "no frames block"
    return [base64.b64decode(s) for s in json.loads(m.group(1))]


def test_grid_frames_row_major_and_distinct():
    fig = widgets.interactive_figure(draw, kept=widgets.sparsity_slider([0.5, 0.2, 0.1], value=0.2),
                                     name=["a", "b"])
    assert len(fig.frames) == 6 and all(f.startswith(PNG) for f in fig.frames)
    assert len(set(fig.frames)) == 6
    # row-major, last control fastest: frame 3 is kept=0.2, name="b"
    assert fig.frames[3] == widgets.render_frame(draw, {"kept": 0.2, "name": "b"})
    assert plt.get_fignums() == []  # every precomputed figure is closed


def test_frames_are_deterministic():
    a = widgets.interactive_figure(draw, kept=[0.1, 0.2])
    b = widgets.interactive_figure(draw, kept=[0.1, 0.2])
    assert a.frames == b.frames and a.html == b.html


def test_html_is_self_contained_with_every_frame():
    fig = widgets.interactive_figure(draw, kept=widgets.sparsity_slider([0.5, 0.2, 0.1], value=0.2),
                                     name=["a", "b"])
    html = fig.html
    assert frames_in(html) == fig.frames
    assert "http://" not in html and "https://" not in html and "eval(" not in html
    assert html.count('type="range"') == 1 and html.count("<select") == 1 and html.count("<option") == 2
    # the slider starts at the widget's value and its label shows that value; the image is that frame
    assert 'value="1"' in html and ">20%</output>" in html
    start = re.search(r'<img class="lfig-image"[^>]*src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(start) == fig.frames[1 * 2 + 0]


def test_mimebundle_has_widget_and_html():
    fig = widgets.interactive_figure(draw, kept=[0.1, 0.2])
    bundle = fig._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == fig.widget.model_id
    assert bundle["text/html"] == fig.html and "2 frames" in bundle["text/plain"]
    assert isinstance(fig.widget, W.VBox)


def test_selection_widgets_as_controls():
    kept = widgets.sparsity_slider([0.5, 0.1], value=0.1)
    step = widgets.time_slider([0, 10, 20], description="step")
    round_ = widgets.choice_slider(range(3), description="round")
    c = [widgets._static_control(n, w) for n, w in [("kept", kept), ("step", step), ("round", round_)]]
    assert c[0].labels == ("50%", "10%") and c[0].values == (0.5, 0.1) and c[0].index == 1
    assert c[1].values == (0, 10, 20) and c[1].index == 2 and c[1].description == "step"
    assert c[2].values == (0, 1, 2) and c[2].kind == "range"
    d = widgets._static_control("crit", W.Dropdown(options=["x", "y"], value="y"))
    assert d.kind == "select" and d.index == 1
    s = widgets._static_control("n", W.IntSlider(min=1, max=5, step=2, value=3))
    assert s.values == (1, 3, 5) and s.index == 1


def test_too_many_frames_is_a_clear_error():
    with pytest.raises(ValueError, match=r"7 a × 9 b = 63 frames.*fewer choices"):
        widgets.interactive_figure(lambda a, b: None, a=list(range(7)), b=list(range(9)))


def test_bad_controls():
    with pytest.raises(ValueError, match="no finite list of choices"):
        widgets.interactive_figure(draw, kept=W.FloatSlider())
    with pytest.raises(TypeError, match="list of choices"):
        widgets.interactive_figure(draw, kept=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        widgets.interactive_figure(lambda kept: None, kept=[1, 2])

    def two(kept):
        plt.figure()
        plt.figure()
    with pytest.raises(ValueError, match="made 2 matplotlib figures"):
        widgets.interactive_figure(two, kept=[1])
    assert plt.get_fignums() == []


def live_png(fig) -> bytes:
    """The picture the live widget's output shows now."""
    (output,) = fig.widget.children[1].outputs
    return base64.b64decode(output["data"]["image/png"])


def test_live_output_shows_the_frame_of_the_chosen_point():
    calls = []

    def counted(kept, name="a"):
        calls.append((kept, name))
        draw(kept, name)

    kept = widgets.sparsity_slider([0.5, 0.2, 0.1], value=0.2)
    fig = widgets.interactive_figure(counted, kept=kept, name=["a", "b"])
    assert len(calls) == 6  # the grid, and nothing more for the live view
    assert live_png(fig) == fig.frames[1 * 2 + 0]
    assert fig.widget.children[1].outputs[0]["data"]["text/plain"] == "<figure for kept = 20%, name = a>"
    kept.value = 0.1
    assert live_png(fig) == fig.frames[2 * 2 + 0]
    fig.widget.children[0].children[1].value = "b"
    assert live_png(fig) == fig.frames[2 * 2 + 1]
    assert len(calls) == 6 and plt.get_fignums() == []


def test_live_output_draws_a_value_off_the_grid():
    n = W.IntSlider(min=1, max=5, step=2, value=3)
    fig = widgets.interactive_figure(lambda n: draw(n), n=n)
    assert live_png(fig) == fig.frames[1]
    n.value = 2  # settable from code, though not on the slider's steps
    assert live_png(fig) == widgets.render_frame(lambda n: draw(n), {"n": 2})
    assert widgets.grid_index(fig.controls, {"n": 2}) is None and widgets.grid_index(fig.controls, {"n": 5}) == 2


def test_a_notebook_runner_never_writes_to_the_kernel(monkeypatch):
    """The book build (papermill on nbclient) must not act as a front end that sends comm messages on
    the shell channel: that races with waiting for the cell's reply (jupyter/nbclient#312), and the
    build then waits out the cell's time limit. Capturing the live figure with ``with output:`` did."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.output_widget import OutputWidget

    sent = []
    monkeypatch.setattr(OutputWidget, "send", lambda self, data=None, **kw: sent.append(data))
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\nfrom lotterylib import widgets\n"
        "def draw(kept):\n    plt.figure(figsize=(2, 1.5))\n    plt.plot([0, 1], [0, kept])\n"
        "widgets.interactive_figure(draw, kept=[0.1, 0.2])"))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (out,) = nb.cells[0].outputs
    assert "application/vnd.jupyter.widget-view+json" in out["data"] and "lfig-frames" in out["data"]["text/html"]
    assert sent == [], f"the runner sent {len(sent)} comm messages to the kernel"
    # The runner still records what the live output shows (the first frame).
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    (output_state,) = [s["state"] for s in states if s["model_name"] == "OutputModel"]
    (shown,) = output_state["outputs"]
    assert shown["data"]["image/png"] in out["data"]["text/html"]

"""examples/tutorial.ipynb runs in a real Jupyter kernel and shows the tutorials' numbers.

Needs nbclient, nbformat and ipykernel (the `test` extra); skipped without them.
The kernel is this interpreter: a kernelspec written to a temporary
JUPYTER_PATH runs `sys.executable -m ipykernel_launcher` with this checkout
on PYTHONPATH.
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
KERNEL = "srcgrad-test"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory):
    jupyter_path = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter_path / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "srcgrad test (this interpreter)", "language": "python",
            "env": {"PYTHONPATH": python_path}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(jupyter_path))
        yield KERNEL


@pytest.fixture(scope="module")
def executed(kernel_name, tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=kernel_name, timeout=60,
                                     resources={"metadata": {"path": str(tmp_path_factory.mktemp("run"))}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if a cell fails
    return notebook


def outputs(cell, mime="text/plain"):
    texts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            texts.append(output["text"])
        elif "data" in output and mime in output["data"]:
            texts.append(output["data"][mime])
    return "".join(texts)


def all_outputs(notebook, mime="text/plain"):
    return "\n".join(outputs(cell, mime) for cell in notebook.cells)


@pytest.mark.parametrize("expected", [
    "x = 5.0: dy/dx = 10.0000", "x = 3.0: dy/dx = 6.0000", "x = 2.0: dy/dx = 4.0000",
    "z = sin(x**2) = -0.1324, dz/dx = 9.9120", "z = sin(x**2) = 0.4121, dz/dx = -5.4668",
    "y = tensor(25., grad_fn=<PowBackward>), dy/dx = tensor(10.)",
    "z = tensor(-0.1324, grad_fn=<SinBackward>), dz/dx = tensor(9.9120)",
    "loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988",
    "source mode: loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988",
    "tape mode:   loss = tensor(6.7012, grad_fn=<NegBackward>), dL/dw = tensor(6.6918), "
    "dL/db = tensor(0.9988)",
    "def value_and_grad_bce_loss(w, b, x, y):", "d_y_pred =", "d_w = d_z * x",
    "source mode: y = 4.6667, dy/dx = [0.6667 1.3333 2.    ]",
    "tape mode:   y = tensor(4.6667, grad_fn=<MeanBackward>), dy/dx = tensor([0.6667, 1.3333, 2.0000])",
    "source mode: [4.1508 2.4988 4.3869]   tape mode: tensor([4.1508, 2.4988, 4.3869])",
    "source mode: [1.4236 3.6324]   tape mode: tensor([1.4236, 3.6324])",  # printed 1.4235 in float32
    "NonScalarOutputError", "source mode: pullback(v) = [1.2452 7.4964 0.0132]",
    "tape mode:   x.grad = tensor([1.2452, 7.4964, 0.0132])", "def pullback(",
    "source mode: dg/da = [-4.], dg/db = [-4.], dg/dc = [-4.], dg/dd = [4.]",
    "tape mode:   dg/da = tensor([-4.]), dg/db = tensor([-4.]), dg/dc = tensor([-4.]), dg/dd = tensor([4.])",
    "source mode: dL/db = [0.0785 0.0115 0.0034]; rows of dL/dw equal it: True",
    "tape mode:   dL/db = tensor([0.0785, 0.0115, 0.0034])",
    "source mode: loss = 1.0000, dL/dw = -2.0000", "source mode: converged to w = 1.9990",
    "tape mode:   converged to w = 1.9990",
    "source mode, with_no_grad: dz/dx = 4.0000", "source mode, with_stop_gradient: dz/dx = 4.0000",
    "dz/dx = tensor(4.)", "shares data with x: True", "backward() after detach",
    "after 10 steps without clearing: tensor([100., 100., 100., 100.])",
    "cleared each step: tensor([10., 10., 10., 10.])",
    "y.grad_fn = <MulBackward>, x.is_leaf = True, y.is_leaf = False",
    "y.grad = tensor([ 4.,  8., 12.])", "x = tensor([1., 2., 3.], requires_grad=True)",
])
def test_notebook_shows_the_tutorials_numbers(executed, expected):
    assert expected in all_outputs(executed)


def test_compare_reports_render_as_html_and_text(executed):
    html = all_outputs(executed, "text/html")
    text = all_outputs(executed)
    assert html.count("<table>") == 3 * 3   # three reports, three tables each
    for shown in (html, text):
        assert "bce_numpy(w=1.0, b=0.0, x=6.7, y=0.0) with respect to w, b" in shown
        assert "ok: all three methods agree" in shown
        assert "tape mode could not run bce_loss" in shown
        assert "ok: source and finite differences agree" in shown
    assert "6.691763" in html and "0.9987706" in html


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_committed_notebook_is_what_the_generator_writes():
    path = ROOT / "examples" / "make_tutorial_notebook.py"
    spec = importlib.util.spec_from_file_location("make_tutorial_notebook", path)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert nbformat.writes(generator.build()) == nbformat.writes(nbformat.read(NOTEBOOK, as_version=4)), \
        "examples/tutorial.ipynb is stale: run python examples/make_tutorial_notebook.py"

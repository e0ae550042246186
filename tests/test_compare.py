"""srcgrad.compare: source mode vs tape mode vs finite differences, and its report."""
import importlib
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad.comparison import Report
from srcgrad.demo import bce_loss

compare_module = importlib.import_module("srcgrad.comparison")


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch):
    monkeypatch.setattr(compare_module, "TIME_PER_METHOD", 0.002)


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def layer(w, b, x):
    return np.tanh(x @ w + b)


def two_outputs(x, y):
    return x * y, np.sin(x)


def scaled(x, *, scale=2.0):
    return np.sum(scale * x ** 2)


def jump(x):
    return x + np.sign(x - 1.0)  # sign carries no gradient; finite differences see the jump


def test_all_three_methods_on_the_tutorial_bce():
    report = srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))
    assert report.wrt == ("w", "b")
    assert report.value == pytest.approx(6.7012, rel=1e-4)
    assert report.seed is None
    for method in ("source", "tape", "fd"):
        grads = report.gradients[method]
        assert isinstance(grads["w"], float) and isinstance(grads["b"], float)
        assert grads["w"] == pytest.approx(6.6918, rel=1e-4)
        assert grads["b"] == pytest.approx(0.9988, rel=1e-4)
    source_tape = report.difference("source", "tape")
    assert source_tape[0] <= 1e-12 and source_tape[1] <= 1e-12
    absolute, relative = report.difference("source", "fd")
    assert 0 < absolute < 1e-6 and 0 < relative < 1e-6
    assert absolute == pytest.approx(max(abs(report.gradients["source"][n] - report.gradients["fd"][n])
                                         for n in "wb"))
    assert report.errors == {}
    assert report.ok and report.within() and report.agree("tape", "fd")
    assert set(report.times) == {"function", "source", "tape", "fd"}
    assert all(0 < t < 0.1 for t in report.times.values())


def test_a_function_tape_mode_cannot_run_gets_a_report_that_says_why():
    report = srcgrad.compare(bce_loss, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))  # uses math.exp
    assert "tape" not in report.gradients and "tape" not in report.times
    assert report.errors["tape"].startswith("SrcgradError: float(t), and math functions")
    assert report.difference("source", "tape") is None and report.agree("tape", "fd") is None
    assert report.gradients["source"]["w"] == pytest.approx(6.6918, rel=1e-4)
    assert report.ok
    text = str(report)
    assert text.count("tape                — (did not run: see below)") == 2
    assert re.search(r"source vs tape +— +— +—", text)
    assert re.search(r"tape forward \+ backward +—", text)
    assert "tape mode could not run bce_loss:\n  SrcgradError: float(t), and math functions" in text
    assert text.endswith("ok: source and finite differences agree within rtol=1e-05, "
                         "atol=1e-06 (tape did not run)")
    assert "tape mode could not run bce_loss" in report._repr_html_()


def test_non_scalar_output_is_compared_through_a_random_seed():
    rng = np.random.default_rng(1)
    w, b, x = rng.normal(size=(5, 3)), rng.normal(size=3), np.ones(5)
    report = srcgrad.compare(layer, w, b, x, wrt=(0, 1))
    assert report.wrt == ("w", "b")
    assert report.seed.shape == (3,) and np.ndim(report.value) == 1
    _, pullback = srcgrad.vjp(layer, w, b, x, wrt=(0, 1))
    expected = pullback(report.seed)
    for method in ("source", "tape", "fd"):
        assert report.gradients[method]["w"].shape == (5, 3)
        np.testing.assert_allclose(report.gradients[method]["w"], expected[0], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(report.gradients[method]["b"], expected[1], rtol=1e-6, atol=1e-8)
    assert report.ok
    text = str(report)
    assert "output <float64 array (3,)>: gradients of sum(seed * output)" in text
    assert "w=<float64 array (5, 3)>" in text
    # a 2-d gradient spans several lines, aligned under its first
    first = next(line for line in text.splitlines() if line.startswith("  d/dw  source"))
    column = first.index("[[")
    following = text.splitlines()[text.splitlines().index(first) + 1]
    assert following[column + 1] == "[" and following[:column + 1].strip() == ""


def test_a_tuple_output_takes_one_seed_per_output():
    report = srcgrad.compare(two_outputs, np.arange(3.0), 2.0, wrt=("x", "y"))
    assert isinstance(report.seed, tuple) and len(report.seed) == 2
    s1, s2 = report.seed
    expected_x = s1 * 2.0 + s2 * np.cos(np.arange(3.0))
    for method in ("source", "tape", "fd"):
        np.testing.assert_allclose(report.gradients[method]["x"], expected_x, rtol=1e-7)
        assert report.gradients[method]["y"] == pytest.approx(np.sum(s1 * np.arange(3.0)))
    assert report.ok


@pytest.mark.parametrize("kwargs, scale", [({}, 2.0), ({"scale": 3.0}, 3.0)])
def test_keyword_only_and_default_arguments(kwargs, scale):
    x = np.array([1.0, -2.0, 0.5])
    report = srcgrad.compare(scaled, x, wrt=("x", "scale"), **kwargs)
    assert report.arguments["scale"] == scale
    for method in ("source", "tape", "fd"):
        np.testing.assert_allclose(report.gradients[method]["x"], 2 * scale * x, rtol=1e-7)
        assert report.gradients[method]["scale"] == pytest.approx(np.sum(x ** 2))
    assert report.ok


def test_a_disagreement_makes_ok_false_and_names_the_pairs():
    report = srcgrad.compare(jump, 1.0 + 1e-7)
    assert report.gradients["source"]["x"] == report.gradients["tape"]["x"] == 1.0
    assert report.gradients["fd"]["x"] > 1e5
    assert not report.ok and not report.agree("source", "fd") and report.agree("source", "tape")
    text = str(report)
    assert re.search(r"source vs finite differences +\S+ +\S+ +NO", text)
    assert re.search(r"source vs tape +0 +0 +yes", text)
    verdict = ("NOT OK: source vs finite differences; tape vs finite differences differ by "
               "more than rtol=1e-05, atol=1e-06")
    assert text.endswith(verdict)
    assert verdict in report._repr_html_()


def test_tolerances_other_than_the_default():
    report = srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))
    assert report.ok
    assert not report.within(rtol=1e-12, atol=0)     # finite differences are not that close
    assert report.agree("source", "tape", rtol=1e-12, atol=0)


def test_differences_and_agreement_from_given_gradients():
    report = Report(scaled, ("x",), {"x": np.zeros(2)}, 0.0, None)
    report.gradients = {"source": {"x": np.array([1.0, 2.0])},
                        "tape": {"x": np.array([1.0, 2.0 + 1e-3])},
                        "fd": {"x": np.array([np.nan, 2.0])}}
    assert report.difference("source", "tape") == pytest.approx((1e-3, 1e-3 / 2.001))
    assert report.difference("source", "fd")[0] == math.inf   # NaN in one method only
    assert report.agree("source", "tape") is False and report.agree("source", "fd") is False
    assert report.within(rtol=1e-3) is False
    report.gradients["fd"]["x"] = np.array([1.0, 2.0])
    assert report.within(rtol=1e-3) and not report.ok
    report.gradients["tape"]["x"] = report.gradients["source"]["x"] = np.array([np.nan, 2.0])
    report.gradients["fd"]["x"] = np.array([np.nan, 2.0])
    assert report.difference("source", "tape") == (0.0, 0.0)   # NaN in both is no difference


def test_text_table_is_fixed_width():
    text = str(srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b")))
    lines = text.splitlines()
    assert lines[0] == "bce_numpy(w=1.0, b=0.0, x=6.7, y=0.0) with respect to w, b"
    assert lines[1] == "  value 6.70123"
    for heading in ("gradient", "largest difference", "time per call"):
        assert heading in lines
    gradients = lines[lines.index("gradient") + 1:lines.index("gradient") + 7]
    assert [line[:6] for line in gradients] == ["  d/dw", "      ", "      ", "  d/db", "      ", "      "]
    assert len({line.index(line.split()[-1]) for line in gradients}) == 1   # one value column
    differences = lines[lines.index("largest difference") + 1:lines.index("largest difference") + 5]
    assert differences[0].split() == ["absolute", "relative", "within", "rtol=1e-05,", "atol=1e-06"]
    assert len({line.index("e-") for line in differences[2:]}) == 1          # right-aligned numbers
    timings = lines[lines.index("time per call") + 1:lines.index("time per call") + 5]
    assert [t.split("  ")[1] for t in timings] == ["bce_numpy itself", "source gradient",
                                                    "tape forward + backward", "finite differences"]
    assert all(re.search(r"\d (ns|µs|ms|s)\b", t) for t in timings)
    assert re.search(r"source gradient +\S+ \S+ +[\d.]+x bce_numpy", text)
    assert lines[-1] == "ok: all three methods agree within rtol=1e-05, atol=1e-06"
    assert repr(srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))).startswith(lines[0])


def test_html_rendering():
    rng = np.random.default_rng(0)
    page = srcgrad.compare(layer, rng.normal(size=(2, 2)), np.zeros(2), np.ones(2), wrt=0)._repr_html_()
    assert page.startswith("<div>") and page.endswith("</div>")
    assert page.count("<table>") == page.count("</table>") == 3
    assert [c for c in re.findall(r"<caption[^>]*><b>(.*?)</b>", page)] == \
        ["gradient", "largest difference", "time per call"]
    assert "w=&lt;float64 array (2, 2)&gt;" in page and "<float64" not in page   # escaped
    assert "<pre style='margin:0'>[[" in page                # a 2-d gradient keeps its lines
    assert page.count("<tr>") == 3 + 4 + 4
    assert "ok: all three methods agree" in page


def test_timing_loop_takes_about_the_time_per_method(monkeypatch):
    monkeypatch.setattr(compare_module, "TIME_PER_METHOD", 0.05)
    calls = []
    started = time.perf_counter()
    per_call = compare_module._time_per_call(lambda: calls.append(1))
    elapsed = time.perf_counter() - started
    assert 0.025 < elapsed < 0.2 and len(calls) > 1000
    assert per_call < 2 * elapsed / len(calls)
    # a call slower than half the budget is timed once
    calls.clear()
    assert compare_module._time_per_call(lambda: (calls.append(1), time.sleep(0.03))) >= 0.03
    assert len(calls) == 1


def test_source_mode_errors_are_raised_not_reported():
    def with_try(x):
        try:
            y = x * 2
        except ValueError:
            y = x
        return y
    with pytest.raises(srcgrad.SrcgradError, match="try"):
        srcgrad.compare(with_try, 1.0)
    with pytest.raises(srcgrad.SrcgradError, match="not a parameter"):
        srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt="q")


def test_compare_is_exported():
    assert "compare" in srcgrad.__all__ and srcgrad.compare is compare_module.compare


def test_docs_show_the_current_report_for_the_readme_example():
    """docs/compare.md pastes a real report; only its timings may differ from today's."""
    text = (Path(__file__).parent.parent / "docs" / "compare.md").read_text()
    begin, end = "<!-- compare report: begin -->\n```\n", "```\n<!-- compare report: end -->"
    pasted = text[text.index(begin) + len(begin):text.index(end)]
    report = str(srcgrad.compare(bce_loss, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))) + "\n"

    def without_timings(s):
        s = re.sub(r"[\d.]+ (ns|µs|ms|s)\b", "T", s)
        s = re.sub(r"[\d.]+x bce_loss", "Rx bce_loss", s)
        return re.sub(r" +", " ", s)
    assert without_timings(pasted) == without_timings(report)


class _Affine:
    def __init__(self):
        self.w = np.array([[0.5, -0.2], [0.1, 0.3]])
        self.b = 0.25

    def loss(self, x):
        return np.sum(np.tanh(x @ self.w) + self.b * x[:, :1])


def _dict_loss(params, x):
    return np.sum(np.tanh(x @ params["w"]) * params["s"])


def test_compare_attribute_paths_and_dict_entries():
    x = np.array([[0.3, -0.5], [0.7, 0.2]])
    model = _Affine()
    report = srcgrad.compare(_Affine.loss, model, x, wrt=("self.w", "self.b"))
    assert report.ok and report.wrt == ("self.w", "self.b") and "tape" in report.gradients
    assert model.w[0, 0] == 0.5 and model.b == 0.25          # the object itself is untouched
    params = {"w": model.w.copy(), "s": 1.5}
    report = srcgrad.compare(_dict_loss, params, x, wrt="params")
    assert report.ok and report.wrt == ("params['w']", "params['s']")
    assert "d/dparams['w']" in str(report) and set(params) == {"w", "s"}

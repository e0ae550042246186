"""The docs and the README stay true to the code."""
import re
from pathlib import Path

import srcgrad
from srcgrad.demo import bce_loss
from srcgrad.ruletable import markdown

ROOT = Path(__file__).parent.parent


def test_rules_table_matches_registry():
    text = (ROOT / "docs" / "rules.md").read_text()
    begin, end = "<!-- rules table: begin -->\n", "<!-- rules table: end -->"
    table = text[text.index(begin) + len(begin):text.index(end)]
    assert table == markdown(), "docs/rules.md is stale: regenerate its table"


def test_readme_shows_the_current_generated_bce_gradient():
    df = srcgrad.grad(bce_loss, wrt=("w", "b"))
    df(1.0, 0.0, 6.7, 0.0)
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert srcgrad.source(df) in blocks, "README's generated BCE gradient is stale"


def test_user_rule_example_in_docs_works():
    text = (ROOT / "docs" / "rules.md").read_text()
    example = re.search(r"## Adding a rule for your own function\n\n```python\n(.*?)```", text, re.S)
    path = ROOT / "docs" / "_rules_example.py"
    path.write_text(example.group(1))
    try:
        import importlib.util
        spec = importlib.util.spec_from_file_location("_rules_example", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        import numpy as np
        x = np.array([-1.0, 0.5, 2.0])
        np.testing.assert_allclose(module.loss(x), 1 / (1 + np.exp(-x)))
    finally:
        path.unlink()


def test_control_flow_doc_shows_the_current_rnn_gradient():
    import importlib.util
    import numpy as np
    path = ROOT / "examples" / "10_rnn_recurrence.py"
    spec = importlib.util.spec_from_file_location("rnn_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    drnn = srcgrad.grad(module.rnn, wrt=("a", "b"))
    text = srcgrad.source(drnn, 0.7, 0.4, np.array([0.5, -0.3, 0.8, 0.1]))
    doc = (ROOT / "docs" / "control-flow.md").read_text()
    assert text in re.findall(r"```python\n(.*?)```", doc, re.S)


def test_reading_doc_shows_the_current_mean_square_gradients():
    import numpy as np
    spec_path = ROOT / "tests" / "test_golden.py"
    import importlib.util
    spec = importlib.util.spec_from_file_location("golden_functions", spec_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = np.array([1.0, 2.0, 3.0])
    doc = (ROOT / "docs" / "reading-generated-code.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    for make in (srcgrad.grad, srcgrad.value_and_grad):
        assert srcgrad.source(make(module.mean_square), x) in blocks

"""The rule table as markdown, generated from the registry (docs/rules.md embeds it)."""
from .rules.registry import all_rules, nondifferentiable_names


def rule_text(rule):
    from .compiler.nodes import to_source
    from .compiler.templates import template_for
    template = template_for(rule)
    if template.called:
        return "(multi-statement rule, called)"
    lines = [f"{name} = {to_source(expr)}" for name, expr in template.assigns]
    lines.append(to_source(template.result))
    return "; ".join(lines)


def markdown():
    rows = ["| function | kind | parameters | rule | valid domain |",
            "| --- | --- | --- | --- | --- |"]
    for rule in all_rules():
        text = rule_text(rule).replace("|", "\\|")
        domain = ", ".join(rule.domain) if rule.domain else "all reals"
        rows.append(f"| `{rule.name}` | {rule.kind} | `{', '.join(rule.params)}` | `{text}` | {domain} |")
    rows.append("")
    rows.append("No gradient flows through: " + ", ".join(f"`{n}`" for n in nondifferentiable_names()) + ".")
    return "\n".join(rows) + "\n"

"""The model card stored with every model version: what it is, what it was trained on, how it scored."""

from __future__ import annotations

from retune.report import markdown_table


def model_card(lineage: dict[str, str], metrics: dict[str, float], notes: list[str]) -> str:
    """Markdown; written before registration, so the version number lives in the registry, not here."""
    return "\n\n".join(
        [
            f"# retune model trained on dataset commit {lineage.get('dataset_commit', '?')[:12]}",
            "## Lineage\n\n" + markdown_table(["", ""], sorted(lineage.items())),
            "## Metrics\n\n" + markdown_table(["metric", "value"], sorted(metrics.items())),
            "## Notes\n\n" + "\n".join(f"- {n}" for n in notes),
        ]
    ) + "\n"

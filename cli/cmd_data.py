"""`sm data` (placeholder until the data module lands)."""
import click


@click.group()
def data() -> None:
    """Inspect sprite data sets."""

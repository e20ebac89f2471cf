"""`sm train` (placeholder until the training module lands)."""
import click


@click.command()
def train() -> None:
    """Train a sprite diffusion model."""

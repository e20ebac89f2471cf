"""A model's post-processing defaults, chosen on its own held-out split (`sm eval --choose-post`).

The clean-up of isolated pixels and specks, and the colour cap, were chosen on the bundled 16x16
set, where they lower FD; on the 32x32 set the clean-up raised it on every seed
(bench/results/fidelity32.md). So the choice is measured per model: the same raw sprites (the
held-out split's count and class mix, per seed) are finished as `sm sample` would finish them
with clean-up on or off and the cap at the training set's 90th percentile of colours per sprite
or at the held-out split's mean (rounded; bench/results/fidelity32.md's best cap), and FD over the real floor is computed for each. A variant
other than the built-in default (clean-up on, 90th percentile) is chosen only when it has a
lower FD than the default on every seed (the raw sprites are shared, so this is a paired
comparison; FD's spread between seeds is larger than most differences between variants).
The choice is stored in the card as `post` (ModelCard.post_defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.data.sprites import SpriteSet
from scarlet_moon.errors import BadInput, arg
from scarlet_moon.models.card import ModelCard

ProgressFn = Callable[[int, int], None]


def candidates(card: ModelCard, held_colours: int) -> list[dict[str, Any]]:
    """(cleanup, colors) pairs to try; the first is the built-in default."""
    p90 = (card.meta.get("colors_per_sprite") or {}).get("p90")
    caps = [p90] + ([held_colours] if p90 is not None and held_colours < p90 else [])
    return [{"cleanup": cleanup, "colors": cap} for cap in caps for cleanup in (True, False)]


def choose_post(
    model: ModelCard | str | Path | None = None,
    data: SpriteSet | str | Path | None = None,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    cache_dir: str | Path | None = None,
    backend: Any = None,
    progress: ProgressFn | None = None,
    classifier_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Each candidate's FD over the floor per seed, and the chosen one (see the module docstring)."""
    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.data.pixels import colors_per_sprite
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.eval.classifier import get_classifier
    from scarlet_moon.eval.fidelity import fidelity
    from scarlet_moon.eval.metrics import frechet_distance, generate_for_eval, load_inputs
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.options import PostOptions, SamplingOptions

    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise BadInput(f"{arg('seeds')} {seeds!r}: expected one or more distinct seeds")
    card, ds = load_inputs(model, data, need_model=True)
    assert card is not None
    clf, train, held = get_classifier(ds, cache_dir=cache_dir, progress=classifier_progress)
    if len(held.labels) < 2:
        raise BadInput(f"data {ds.source!r} is too small for a held-out split ({len(held.labels)} held out)")
    per = [int((held.labels == k).sum()) for k in range(len(ds.label_names))]
    labels = [k for k, n in enumerate(per) for _ in range(n)]
    ref = clf.features(train.images)
    floor = frechet_distance(clf.features(held.images), ref)
    typical = int(round(float(colors_per_sprite(held.images).mean())))
    rows = [{**c, "fd_over_floor": []} for c in candidates(card, typical)]
    for i, seed in enumerate(seeds):
        raw = generate_for_eval(
            card, labels, seed=seed, sampling=SamplingOptions(), raw=True, backend=backend or BackendOptions()
        )
        for row in rows:
            images = finish(card, PostOptions(colors=row["colors"], cleanup=row["cleanup"]), Edit(), raw)
            row["fd_over_floor"].append(frechet_distance(clf.features(images), ref) / floor)
            if i == len(seeds) - 1:
                row["isolated_rate"] = fidelity(images)["isolated_rate"]
        if progress is not None:
            progress(i + 1, len(seeds))
    default = rows[0]
    wins = [r for r in rows[1:] if all(a < b for a, b in zip(r["fd_over_floor"], default["fd_over_floor"]))]
    chosen = min(wins, key=lambda r: float(np.mean(r["fd_over_floor"]))) if wins else default
    for r in rows:
        r["mean_fd_over_floor"] = float(np.mean(r["fd_over_floor"]))
    return {
        "model": str(card.path),
        "data": ds.source,
        "seeds": seeds,
        "count_per_seed": len(labels),
        "floor": floor,
        "held_out_mean_colours": typical,
        "variants": rows,
        "chosen": {"cleanup": chosen["cleanup"], "colors": chosen["colors"]},
        "changed": chosen is not default,
    }


def write_post(path: str | Path, result: dict[str, Any]) -> dict[str, Any]:
    """Store the chosen defaults in the card of the .safetensors model at `path`; the card's new `post`."""
    from scarlet_moon.models.card import write_card_entry

    chosen = result["chosen"]
    means = ", ".join(
        f"{'cleanup' if r['cleanup'] else 'no cleanup'} cap {r['colors']}: {r['mean_fd_over_floor']:.3f}"
        for r in result["variants"]
    )
    post = {
        "cleanup": bool(chosen["cleanup"]),
        "colors": chosen["colors"],
        "source": f"chosen on the held-out split (eval.post_choice), seeds {result['seeds']}, mean FD/floor {means}",
    }
    return write_card_entry(path, "post", post)["post"]


TEXTURE_EPS = 1e-3  # an isolated-pixel rate floor, so a set with none still compares in log ratio
# Off only when that is nearer the set's rate by more than this factor. The bundled models sit at a
# tie (bundled-25: 0.152 with, 0.237 without, its set 0.191), where FD prefers the clean-up on all 8
# seeds (bench/results/fidelity.md); Minetest's runs are 1.6-1.9x nearer without it.
TEXTURE_MARGIN = 1.25


def cleanup_for(with_cleanup: float, without: float, target: float) -> bool:
    """Keep the clean-up (the default) unless the isolated-pixel rate `without` it is nearer `target`
    (the training sprites' rate) than the rate `with_cleanup` by more than TEXTURE_MARGIN, in log ratio."""

    def gap(rate: float) -> float:
        return abs(float(np.log((rate + TEXTURE_EPS) / (target + TEXTURE_EPS))))

    return not gap(without) + float(np.log(TEXTURE_MARGIN)) < gap(with_cleanup)


def texture_post(card: ModelCard, raw: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """A new model's `post`: the clean-up stays on unless it takes its raw sprites' isolated-pixel rate
    clearly further from the training sprites' own than they are without it (cleanup_for). `raw`:
    N x H x W x C uint8 unfinished sprites of the model (a run's last sample grid), `real`: its training
    sprites.

    The clean-up merges isolated near-duplicate shades, which is noise on flat-shaded art (it lowers FD
    on the bundled set) and the texture itself on noisy block art (bench/results/finetune-post.md:
    it changes 42% of Minetest's own pixels and left its models' sprites at 0.3-0.5x the real rate).
    The colour cap stays the card's default; `sm eval --choose-post` replaces this by FD."""
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.eval.fidelity import fidelity
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.options import PostOptions

    target = fidelity(real)["isolated_rate"]
    rates = {on: fidelity(finish(card, PostOptions(cleanup=on), Edit(), raw))["isolated_rate"] for on in (True, False)}
    return {
        "cleanup": cleanup_for(rates[True], rates[False], target),
        "source": (
            f"chosen at the end of training on {len(raw)} sprites (eval.post_choice.texture_post): isolated pixels "
            f"{rates[True]:.3f} with clean-up, {rates[False]:.3f} without, training set {target:.3f}"
        ),
    }

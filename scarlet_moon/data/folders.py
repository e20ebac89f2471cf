"""Folders of PNGs: one rule for every reader of them (`sm train`'s PNG sets, `sm sheet --from`).

    ROOT/<label>/*.png   a subfolder per label, taken in name order
    ROOT/*.png           files directly in ROOT ("loose": `sm sheet` packs them, a training set ignores them)

Names starting with "." are skipped, ".png" matches in any case, files are taken in name order, and
PNGs deeper than a label folder are never read: the warning says how many (labels are one folder deep).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PngFolder:
    root: Path
    labelled: tuple[tuple[str, tuple[Path, ...]], ...]  # (label folder name, its PNGs), by name
    loose: tuple[Path, ...]  # PNGs directly in root
    deeper: tuple[Path, ...]  # PNGs below a label folder: not read

    def files(self) -> list[tuple[Path, str | None]]:
        """(path, label) of every PNG read: the label folders', then the loose ones (label: the stem
        before its last "_", hero_000 -> hero; None without one)."""
        out: list[tuple[Path, str | None]] = [(p, name) for name, files in self.labelled for p in files]
        return out + [(p, p.stem.rpartition("_")[0] or None) for p in self.loose]


def pngs_in(folder: Path) -> list[Path]:
    """The PNG files directly in `folder`, by name (hidden ones skipped)."""
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")),
        key=lambda p: p.name,
    )


def png_folder(root: str | Path) -> PngFolder:
    """`root` read by the rule above; a warning names the PNGs too deep to be read."""
    root = Path(root)
    subdirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name)
    deeper = tuple(p for d in subdirs for p in sorted(d.rglob("*.png")) if p.parent != d)
    if deeper:
        log.warning(
            "%r: %d PNG(s) in folders below its label folders are not read (labels are one folder deep), e.g. %r",
            str(root),
            len(deeper),
            str(deeper[0]),
        )
    return PngFolder(root, tuple((d.name, tuple(pngs_in(d))) for d in subdirs), tuple(pngs_in(root)), deeper)

"""The real photographs behind the bundled weights and the held-out sets, from Debian's desktop-background packages.

Why: scikit-image ships six usable photographs; training on more content is what moved the bundled MMP-RNN
(docs/training.md), and scoring needs photographs that training never saw. Debian packages dozens of real
photographs as desktop backgrounds. This script names them, so every session gets the same folders:

    python bench/debian_photos.py --out photos/      # needs apt-get (Debian/Ubuntu) and the package registry

writes photos/train/ (24 pictures for `bench/train_bundled.py --photos`), photos/train_more/ (15 more photographs,
from the Ubuntu Touch backgrounds Debian packages as lomiri-wallpapers, for the third fine-tuning stage:
`--photos photos/train photos/train_more`), photos/other/ (five photographs no bundled weights saw, for `other.h5`)
and photos/other2/ (five more pictures plus scikit-image's coffee and rocket, for `other2.h5`), each file named
after its background. Then (docs/training.md):

    python bench/other_footage.py photos/other/{EveningGlow,Path,ColorfulCups,LadyBird,Grey}.jpg --out other/ --takes 2 --seed 5
    mmp synthesize --raw other/ --out other.h5 --flow dis --frames 7-13
    python bench/other_footage.py photos/other2/{DarkestHour.jpg,summer_1am.jpg,Kokkini.png,Cluster.png,IceCold.png,coffee.png,rocket.png} \
        --out other2/ --takes 2 --seed 11
    mmp synthesize --raw other2/ --out other2.h5 --flow dis --frames 7-13 --stride 4

Nothing at run time (tests, demo, the package) uses these files; they only train and score the bundled weights.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmpdata.footage import UNSEEN_IMAGES, load_photo  # noqa: E402

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "gnome-backgrounds", "lomiri-wallpapers-16.04",
            "lomiri-wallpapers-20.04")
MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
PLASMA_BIG = "usr/share/wallpapers/{}/contents/images/{}"
GNOME = "usr/share/backgrounds/gnome/{}.webp"

# 17 photographs and 7 strongly textured pictures (artwork with fine, sharp detail) for training
TRAIN = {
    **{n: MATE.format(n) for n in ("Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "RainDrops",
                                   "Storm", "TwoWings", "Wood", "YellowFlower")},
    **{n: PLASMA.format(n) for n in ("Autumn", "BytheWater", "ColdRipple", "FallenLeaf", "Kite", "OneStandsOut")},
    "Elephants": "usr/share/backgrounds/mate/abstract/Elephants.jpg",
    "Altai": PLASMA_BIG.format("Altai", "5120x2880.png"),
    "MilkyWay": PLASMA_BIG.format("MilkyWay", "5120x2880.png"),
    **{n: GNOME.format(n) for n in ("wood-l", "grid-l", "truchet-l", "licorice-l")},
}
# 15 more photographs (every photograph of the two lomiri packages; their artworks are left out)
LOMIRI = "usr/share/backgrounds/{}.jpg"
TRAIN_MORE = {n: LOMIRI.format(n) for n in (
    "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "analogpattern_by_Peter_Nerlich", "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
    "Kleiber_by_Lukas_Baubkus")}
# held out: `other.h5` (photographs) and `other2.h5` (two low-light photographs and three artworks)
OTHER = {"EveningGlow": PLASMA.format("EveningGlow"), "Path": PLASMA.format("Path"),
         "ColorfulCups": PLASMA.format("ColorfulCups"), "LadyBird": MATE.format("LadyBird"),
         "Grey": PLASMA.format("Grey")}
OTHER2 = {"DarkestHour": PLASMA.format("DarkestHour"), "summer_1am": PLASMA.format("summer_1am"),
          "Kokkini": PLASMA_BIG.format("Kokkini", "3840x2160.png"),
          "Cluster": PLASMA_BIG.format("Cluster", "3840x2160.png"),
          "IceCold": PLASMA_BIG.format("IceCold", "5120x2880.png")}


def extract(tmp: Path) -> Path:
    """Download the packages (no install) and unpack them under tmp/root."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True)
    root = tmp / "root"
    for deb in sorted(tmp.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--debs", type=Path, default=None,
                   help="a folder where the packages are already unpacked (dpkg -x), instead of downloading them")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = a.debs if a.debs else extract(Path(tmp))
        for split, names in (("train", TRAIN), ("train_more", TRAIN_MORE), ("other", OTHER), ("other2", OTHER2)):
            folder = a.out / split
            folder.mkdir(parents=True, exist_ok=True)
            for name, rel in names.items():
                src = root / rel
                if not src.is_file():
                    raise SystemExit(f"{src}: missing from the packages {', '.join(PACKAGES)}; "
                                     "check the Debian release (these names are from bookworm)")
                shutil.copyfile(src, folder / f"{name}{src.suffix}")
            if split == "other2":
                for name in UNSEEN_IMAGES:  # scikit-image's coffee and rocket, which training never uses
                    cv2.imwrite(str(folder / f"{name}.png"), load_photo(name)[:, :, ::-1])
            print(f"{folder}: {len(list(folder.iterdir()))} pictures")


if __name__ == "__main__":
    main()

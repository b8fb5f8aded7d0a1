"""Render the built documentation to PNG screenshots, for a person to look at.

A green build says that the pages were generated, not that they read well:
math typeset, tables and code unclipped, figures and legends legible. Before a
release, build the docs, run this script and look at every PNG::

    python -m sphinx -W -b html docs docs/_build/html
    python docs/render_pages.py

It drives headless Chromium (Debian: ``apt-get install chromium``) over the
pages as files, with no network, as a reader of an offline copy sees them.
Each page is shot in a tall window, trimmed of the blank space below its end
and cut into tiles of at most ``--tile-height`` pixels, written to
``docs/_build/screenshots/<page>-<n>.png``.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

DOCS = Path(__file__).resolve().parent
PAGES = ["index", "install", "user_guide", "entanglement", "monte_carlo", "convac", "theory",
         "architecture", "auto_examples/index"]


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("No Chromium found: install it (Debian: apt-get install chromium).")


def gallery_pages(html_dir):
    return sorted(f"auto_examples/{p.stem}" for p in (html_dir / "auto_examples").glob("plot_*.html"))


def screenshot(chromium, html, png, width, height):
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={width},{height}",
             # Time for MathJax to typeset before the shot is taken.
             "--virtual-time-budget=15000", f"--screenshot={png}", html.as_uri()],
            check=True, capture_output=True, timeout=300,
        )


def trim_and_tile(png, stem, out_dir, tile_height):
    image = Image.open(png).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    box = ImageChops.difference(image, background).getbbox()
    bottom = min(image.height, (box[3] if box else image.height) + 20)
    tiles = []
    for n, top in enumerate(range(0, bottom, tile_height)):
        tile = out_dir / f"{stem}-{n}.png"
        image.crop((0, top, image.width, min(bottom, top + tile_height))).save(tile)
        tiles.append(tile)
    return tiles, bottom


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=DOCS / "_build" / "html",
                        help="built HTML (default: docs/_build/html)")
    parser.add_argument("--out", type=Path, default=DOCS / "_build" / "screenshots",
                        help="where the PNGs go (default: docs/_build/screenshots)")
    parser.add_argument("--width", type=int, default=1280, help="window width in pixels")
    parser.add_argument("--max-height", type=int, default=16000,
                        help="tallest page captured, in pixels")
    parser.add_argument("--tile-height", type=int, default=1600)
    parser.add_argument("pages", nargs="*",
                        help="pages such as 'theory' (default: landing page, install, user "
                             "guide, theory and every gallery page)")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        sys.exit(f"No built docs in {args.html}: run python -m sphinx -b html docs {args.html}.")
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    pages = args.pages or PAGES + gallery_pages(args.html)
    for page in pages:
        html = args.html / f"{page}.html"
        stem = page.replace("/", "_")
        full = args.out / f"{stem}-full.png"
        screenshot(chromium, html, full, args.width, args.max_height)
        tiles, height = trim_and_tile(full, stem, args.out, args.tile_height)
        full.unlink()
        clipped = " (cut at --max-height)" if height >= args.max_height else ""
        print(f"{page}: {height} px{clipped} -> {', '.join(t.name for t in tiles)}")


if __name__ == "__main__":
    main()

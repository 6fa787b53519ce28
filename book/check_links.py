"""Check the links and images inside a built HTML site, offline: every relative link, image, script and stylesheet
must name a file of the site, every ``#anchor`` an ``id`` (or ``name``) in the page it points to, and every ``<img>``
must carry alt text.

Links to other sites (``http:``, ``https:``, ``mailto:`` ...) are listed by count but not followed: the book is built
without network access. An image has no alt text when its ``alt`` is missing, blank, or its own ``src``: docutils
writes the image's address as its ``alt`` when the source gives none (a notebook cell without MyST-NB's
``mystnb: image: alt:`` metadata). ``python book/check_links.py book/_build/html`` exits 1 and names each broken link
and each image without alt text, with its page.
"""

from __future__ import annotations

import argparse
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

_LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src", "source": "src"}


class _Page(HTMLParser):
    """The links and the anchors (``id`` and ``name`` attributes) of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.anchors: set[str] = set()
        self.images_without_alt: list[str] = []  # their src

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name") if tag != "meta" else ():
            if values.get(key):
                self.anchors.add(values[key])
        link = values.get(_LINK_ATTRS.get(tag, ""))
        if link:
            self.links.append(link)
        if tag == "img":
            src, alt = values.get("src") or "", (values.get("alt") or "").strip()
            if not alt or alt in (src, unquote(src)):
                self.images_without_alt.append(src)


def _parse(page: Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


def _pages(site: Path) -> list[Path]:
    pages = sorted(site.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"no .html page under {site}; build the book first (make book)")
    return pages


def broken_links(site: Path) -> tuple[list[str], int]:
    """Every broken internal link of the HTML pages under ``site``, as ``page: link (why)``, and the number of
    external links seen (not followed).

    Raises:
        FileNotFoundError: ``site`` holds no ``.html`` page.
    """
    site = Path(site).resolve()
    pages = _pages(site)
    parsed: dict[Path, _Page] = {}

    def page(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    broken, external = [], 0
    for source in pages:
        for link in page(source).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                external += parts.scheme not in ("data", "javascript")
                continue
            target = (source.parent / unquote(parts.path)).resolve() if parts.path else source
            where = f"{source.relative_to(site)}: {link}"
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(site):
                broken.append(f"{where} (points outside the site)")
            elif not target.is_file():
                broken.append(f"{where} (no file {target.relative_to(site)})")
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in page(target).anchors:
                broken.append(f"{where} (no anchor #{parts.fragment} in {target.relative_to(site)})")
    return broken, external


def images_without_alt(site: Path) -> list[str]:
    """Every ``<img>`` of the HTML pages under ``site`` whose alt text is missing, blank or its own ``src``, as
    ``page: src``.

    Raises:
        FileNotFoundError: ``site`` holds no ``.html`` page.
    """
    site = Path(site).resolve()
    return [f"{page.relative_to(site)}: {src}" for page in _pages(site) for src in _parse(page).images_without_alt]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="the built site, e.g. book/_build/html")
    args = parser.parse_args(argv)
    broken, external = broken_links(args.site)
    for line in broken:
        print(f"broken link: {line}", file=sys.stderr)
    no_alt = images_without_alt(args.site)
    for line in no_alt:
        print(f"image without alt text: {line}", file=sys.stderr)
    pages = len(list(args.site.rglob("*.html")))
    print(f"{pages} pages: {len(broken)} broken internal links, {len(no_alt)} images without alt text; {external} "
          "links to other sites not checked (offline)")
    return 1 if broken or no_alt else 0


if __name__ == "__main__":
    sys.exit(main())

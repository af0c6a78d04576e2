"""Writing the examples page: its images beside it, then examples.json, examples.md and examples.html.

Every file is written atomically (temporary name, then rename: `ukmp.atomic`), so a run killed
while writing leaves the previous page or the new one, never half of one. The images go first:
a page that names an image is only written once the image is in place.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from ukmp.atomic import atomic_path, write_json_atomic, write_text_atomic
from ukmp.examples_page.document import Document
from ukmp.examples_page.html_page import html_page
from ukmp.examples_page.markdown_page import markdown_page

PAGE_JSON = "examples.json"
PAGE_HTML = "examples.html"
PAGE_MARKDOWN = "examples.md"
IMAGE_PREFIX = "image-"


def _copy_images(folder: Path, images: Mapping[str, Path]) -> None:
    """Copy each image to its page path under ``folder``, and drop images an earlier, larger sample left there."""
    targets = {(folder / rel).resolve() for rel in images}
    for rel, source in images.items():
        target = folder / rel
        if not source.is_file() or source.resolve() == target.resolve():
            continue
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    for parent in {(folder / rel).parent for rel in images}:
        for stale in parent.glob(f"{IMAGE_PREFIX}*"):
            if stale.is_file() and stale.resolve() not in targets:
                stale.unlink()


def write_page(folder: str | Path, doc: Document, images: Mapping[str, Path]) -> list[Path]:
    """Write the page of ``doc`` into ``folder``; ``images`` maps each image's page path to the file to copy."""
    folder = Path(folder)
    _copy_images(folder, images)
    write_json_atomic(folder / PAGE_JSON, doc)
    write_text_atomic(folder / PAGE_MARKDOWN, markdown_page(doc))
    write_text_atomic(folder / PAGE_HTML, html_page(doc, folder))
    return [folder / PAGE_HTML, folder / PAGE_MARKDOWN, folder / PAGE_JSON]

"""Reading dataset files with errors people can act on.

Real datasets are big and a little dirty: one broken record should not cost a user an hour of
guessing. Every loader goes through this module, so every problem is reported the same way: the
file, the record index, what is wrong, and the fix. `on_error="stop"` (the default) raises a
`UserError` at the first bad record; `on_error="skip"` drops it, counts it and says so once at the
end (through the `ukmp.data` logger, which prints to stderr even when logging is not configured).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from PIL import Image

from ukmp.data.records import Records
from ukmp.errors import UserError

T = TypeVar("T")
OnError = Literal["stop", "skip"]
ON_ERROR_CHOICES = ("stop", "skip")

log = logging.getLogger("ukmp.data")


def check_on_error(on_error: str) -> OnError:
    """Validate an `on_error` option early, before any file is read."""
    if on_error not in ON_ERROR_CHOICES:
        raise UserError(f"on_error must be 'stop' or 'skip', got {on_error!r}.")
    return on_error  # type: ignore[return-value]


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, turning every way it can fail into one sentence naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset file {path} does not exist; check the path (or the index in ukmp_data.json).")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"dataset file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); re-download or fix it."
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read dataset file {path} ({exc}); check its permissions and encoding.") from exc


def layout_error(path: str | Path, expected: str, detail: str) -> UserError:
    """A whole file in the wrong layout (not one bad record): no skip policy can help."""
    return UserError(f"{path} is not a {expected} file ({detail}); check that the path names the right file.")


class RecordCollector(Generic[T]):
    """Collects the records of one file and applies the stop/skip policy to the bad ones."""

    def __init__(self, source: str | Path, on_error: str = "stop"):
        self.source = str(source)
        self.on_error = check_on_error(on_error)
        self.items: list[T] = []
        self.skipped: list[str] = []
        self._image_ok: dict[Path, bool] = {}

    def add(self, item: T) -> None:
        self.items.append(item)

    def bad(self, index: int | str, reason: str) -> None:
        """Report a bad record: raise under "stop", remember it under "skip"."""
        message = f"record {index} of {self.source} {reason}"
        if self.on_error == "stop":
            raise UserError(f"{message}; fix or remove it (ukmp evaluate can skip such records with --on-error skip).")
        self.skipped.append(message)

    def image_exists(self, path: Path, index: int | str) -> bool:
        """Check an image path once (many questions share an image); report it when missing."""
        ok = self._image_ok.get(path)
        if ok is None:
            ok = self._image_ok[path] = path.is_file()
        if not ok:
            self.bad(index, f"points to a missing image file {path}")
        return ok

    def finish(self) -> Records[T]:
        """The kept records; under "skip" say once how many were dropped and why (the first reason)."""
        if self.skipped:
            log.warning(
                "skipped %d of %d records in %s (first: %s)",
                len(self.skipped),
                len(self.skipped) + len(self.items),
                self.source,
                self.skipped[0],
            )
        if not self.items:
            raise UserError(f"{self.source} holds no usable records; check that it is the right file.")
        return Records(self.items, source=self.source, skipped=self.skipped)


def need(record: Any, key: str, kind: type | tuple[type, ...] = str) -> Any:
    """`record[key]` if present and of the right type, else a KeyError/TypeError with a plain reason."""
    if not isinstance(record, dict):
        raise TypeError(f"is a {type(record).__name__}, not a JSON object")
    if key not in record:
        raise KeyError(f"has no {key!r} field")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TypeError(f"has a {key!r} field that is not a {names}")
    return value


def reason(exc: Exception) -> str:
    """The plain reason carried by a KeyError/TypeError raised from `need` (KeyError quotes its text)."""
    return str(exc.args[0]) if exc.args else type(exc).__name__


def load_image(path: str | Path) -> Image.Image:
    """An RGB image (RGBA, grayscale and palette images converted), or one sentence naming the bad file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, SyntaxError) as exc:  # PIL's UnidentifiedImageError is an OSError
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable image ({reason}); replace the file or remove its record.") from None

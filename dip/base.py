"""The frame every transform fits in: documented parameters with defaults and validation, and a render context.

A transform is a ``Transform`` subclass with a ``name``, a one-line ``summary``, a tuple of ``Param`` and a
``_render`` method. ``validate(params)`` turns the text parameters of a ``TransformSpec`` into typed values
(or raises ``TransformError`` naming the transform and the parameter); ``effective(params)`` gives the text
of every parameter with its default filled in (what provenance records); ``render`` validates, then renders.
"""

from __future__ import annotations

import abc
import importlib.util
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dip.model import DipInput, OutputFile, TransformError


@dataclass(frozen=True)
class Param:
    """One parameter: ``parse`` turns its text into a value or raises ``ValueError`` with the reason.

    ``default`` is text (parsed like a given value); None means "not set" (the transform decides).
    """

    name: str
    doc: str
    parse: Callable[[str], Any]
    default: str | None = None


@dataclass
class RenderContext:
    """Where a transform puts its results: ``folder`` (relative to ``data/``), large files in ``workdir``,
    and ``notes`` (one line each: an input skipped and why)."""

    transform: str
    folder: str
    workdir: Path | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(f"{self.folder}: {message}")

    def scratch(self, suffix: str = "") -> Path:
        """A new empty file name in the work folder (a private temporary folder when none was given)."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="oais-dip-"))
        fd, name = tempfile.mkstemp(dir=self.workdir, suffix=suffix)
        os.close(fd)
        return Path(name)


class Transform(abc.ABC):
    """Base class of the registered renderers (each implements ``_render``)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    # ------------------------------------------------------------------ parameters

    def effective(self, params: Mapping[str, str]) -> dict[str, str]:
        """Every parameter that has a value, as text: the given ones and the defaults (validated)."""
        self.validate(params)
        out = {p.name: p.default for p in self.params if p.default is not None}
        out.update(params)
        return dict(sorted(out.items()))

    def validate(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Typed values of every parameter (None when not set); raises ``TransformError``."""
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                hint = ", ".join(sorted(known)) or "none"
                raise TransformError(self.name, key, f"unknown parameter (known: {hint})")
        values: dict[str, Any] = {}
        for p in self.params:
            text = params.get(p.name, p.default)
            if text is None:
                values[p.name] = None
                continue
            try:
                values[p.name] = p.parse(str(text).strip())
            except TransformError:
                raise
            except (ValueError, TypeError) as exc:
                raise TransformError(self.name, p.name, f"{exc} (got {text!r})") from None
        self.check(values, params)
        return values

    def check(self, values: dict[str, Any], given: Mapping[str, str]) -> None:
        """Rules between parameters; raise ``self.bad(param, reason)``."""

    def bad(self, parameter: str | None, message: str) -> TransformError:
        return TransformError(self.name, parameter, message)

    def help(self) -> str:
        """The transform and its parameters, one per line (for READMEs and ``--help`` texts)."""
        lines = [f"{self.name}: {self.summary}"]
        for p in self.params:
            default = f" (default: {p.default})" if p.default is not None else ""
            lines.append(f"  {p.name}: {p.doc}{default}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ rendering

    def render(self, inputs: Sequence[DipInput], params: Mapping[str, str], *, folder: str | None = None,
               workdir: Path | None = None, notes: list[str] | None = None) -> list[OutputFile]:
        """Validate ``params`` and render ``inputs``; skipped inputs are explained in ``notes``."""
        values = self.validate(params)
        ctx = RenderContext(self.name, folder or self.name, workdir, notes if notes is not None else [])
        return self._render(list(inputs), values, ctx)

    @abc.abstractmethod
    def _render(self, inputs: list[DipInput], values: dict[str, Any], ctx: RenderContext) -> list[OutputFile]:
        """The transform's own work on validated parameters."""


# ---------------------------------------------------------------------- parsers


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("must be an integer")
        value = int(text)
        if low is not None and value < low:
            raise ValueError(f"must be >= {low}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {high}")
        return value
    return parse


def number(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    def parse(text: str) -> float:
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
            raise ValueError("must be a number")
        value = float(text)
        if low is not None and value < low:
            raise ValueError(f"must be >= {low:g}")
        if high is not None and value > high:
            raise ValueError(f"must be <= {high:g}")
        return value
    return parse


def choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text
    return parse


def hdu_selector(text: str) -> int | str:
    """``auto`` (the first 2-D image), an HDU index (``0``, ``1``...) or an EXTNAME."""
    if text == "auto":
        return text
    if re.fullmatch(r"\d{1,4}", text):
        return int(text)
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,67}", text):
        return text.upper()
    raise ValueError("must be auto, an HDU index or an EXTNAME")


def has_module(name: str) -> bool:
    """True when ``name`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


__all__ = ["Param", "RenderContext", "Transform", "choice", "has_module", "hdu_selector", "integer", "number"]

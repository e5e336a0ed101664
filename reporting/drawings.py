"""The report's figures: asked for while the page is written, drawn together once it is.

Each figure costs tenths of a second of matplotlib (layout, rasterizing, PNG), and the page has
about ten, more than all the rest of the report. Asked for first and drawn after, they can be
drawn side by side by forked workers (``parallel``: FitWorkers.map, as for model selection's
fits), and the page does not wait for one figure before writing the next section.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Draw = Callable[..., bytes]
Request = tuple[Draw, tuple[Any, ...]]
Parallel = Callable[[Callable[[Request], bytes], Iterable[Request]], Iterator[bytes]]


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _stand_in(index: int) -> str:
    # An HTML comment: the page's data is escaped, so no table cell can spell one.
    return f"<!--figure {index}-->"


def _drawn(request: Request) -> bytes:
    draw, arguments = request
    return draw(*arguments)


class Drawings:
    """The figures one page asks for, in the order it asks."""

    def __init__(self) -> None:
        self._requests: list[Request] = []
        self._alts: list[str] = []

    def image(self, draw: Draw, *arguments: Any, alt: str) -> str:
        """A stand-in for ``draw(*arguments)``'s image; ``draw`` must be picklable (a function
        of reporting.figures), as must the arguments."""
        self._requests.append((draw, arguments))
        self._alts.append(alt)
        return _stand_in(len(self._requests) - 1)

    def filled(self, page: str, parallel: Parallel) -> str:
        """``page`` with every stand-in replaced by its figure, drawn by ``parallel``."""
        pngs = parallel(_drawn, self._requests)
        for index, (png, alt) in enumerate(zip(pngs, self._alts, strict=True)):
            page = page.replace(_stand_in(index), _img(png, alt), 1)
        return page

"""Page preview (页面预览) of a sealed certificate as a PNG: PDF via PyMuPDF, OFD via our OFD drawer.

One entry point for whoever shows a document to a person (the console's archive page): the bytes
are first judged by the container reader that 验章 uses (:func:`stamping.container.identify`), so a
polyglot or a file whose name lies is refused with the reason before any parser sees it.

Decisions: 96 dpi by default (a readable A4 page of about 800×1100 pixels, ~100 KB); at most 200
dpi, so a request cannot make the server allocate a poster; nothing is written to disk.
"""

from __future__ import annotations

import pymupdf

from stamping.container import identify
from stamping.ofd.render import RenderedPage, render_ofd_page

MAX_DPI = 200


class PreviewError(ValueError):
    """The document cannot be shown: names the file and the reason."""


def preview_page(data: bytes, path: str, page_index: int = 0, dpi: int = 96) -> RenderedPage:
    """PNG of one page (0-based) of a PDF or OFD; PreviewError with the reason otherwise."""
    from stamping.container import ContainerError
    from stamping.ofd.package import OfdError

    dpi = max(36, min(dpi, MAX_DPI))
    try:
        kind = identify(data, path)
        if kind == "ofd":
            return render_ofd_page(data, path, page_index, dpi=dpi)
        return _pdf_page(data, path, page_index, dpi)
    except (ContainerError, OfdError, IndexError) as exc:
        raise PreviewError(str(exc)) from None
    except (RuntimeError, ValueError) as exc:  # MuPDF's own errors on a broken PDF
        raise PreviewError(f"{path}: cannot be drawn ({exc})") from None


def _pdf_page(data: bytes, path: str, page_index: int, dpi: int) -> RenderedPage:
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        if not 0 <= page_index < doc.page_count:
            raise IndexError(f"{path}: no page {page_index + 1} (the document has {doc.page_count})")
        # annots=True: the seal's widget appearance is part of what a reader shows.
        pix = doc[page_index].get_pixmap(dpi=dpi, annots=True)
        return RenderedPage(pix.tobytes("png"), page_index, doc.page_count, pix.width, pix.height)

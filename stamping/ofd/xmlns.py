"""OFD XML namespace handling: read tolerantly (2016 namespace, the bare one, or none).

An element is matched by its whole tag against the few qualified names it may have
(:func:`qualified`), so lxml filters children in C: splitting every tag in Python was a tenth of
OFD 验章 and stamping.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

OFD_NS = "http://www.ofdspec.org/2016"
# One real producer writes the namespace without the year; some children come unqualified.
ACCEPTED_NS = frozenset({OFD_NS, "http://www.ofdspec.org", ""})
_QUALIFIED: dict[str, tuple[str, ...]] = {}


def qualified(name: str) -> tuple[str, ...]:
    """The tags of OFD element ``name`` in every accepted namespace (``{ns}name``, or ``name`` bare)."""
    tags = _QUALIFIED.get(name)
    if tags is None:
        tags = _QUALIFIED[name] = tuple(sorted(f"{{{ns}}}{name}" if ns else name for ns in ACCEPTED_NS))
    return tags


def local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def namespace(el: etree._Element) -> str:
    tag = el.tag
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def is_ofd(el: etree._Element, name: str) -> bool:
    return el.tag in qualified(name)


def children(el: etree._Element, name: str) -> Iterator[etree._Element]:
    return el.iterchildren(*qualified(name))


def child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next(el.iterchildren(*qualified(name)), None)


def descendants(el: etree._Element, name: str) -> Iterator[etree._Element]:
    """``el`` itself and every element below it named ``name``, in document order."""
    return el.iter(*qualified(name))


def text(el: etree._Element | None, name: str | None = None) -> str:
    node = child(el, name) if name else el
    return (node.text or "").strip() if node is not None else ""


def floats(value: str | None) -> list[float]:
    """An ST_Array of numbers ("x y w h"); producers sometimes separate with commas."""
    if not value:
        return []
    try:
        return [float(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a list of numbers") from None

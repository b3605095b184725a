"""OFD XML namespace handling: read tolerantly (2016 namespace, the bare one, or none)."""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

OFD_NS = "http://www.ofdspec.org/2016"
# One real producer writes the namespace without the year; some children come unqualified.
ACCEPTED_NS = frozenset({OFD_NS, "http://www.ofdspec.org", ""})


def local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def namespace(el: etree._Element) -> str:
    tag = el.tag
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def is_ofd(el: etree._Element, name: str) -> bool:
    return local(el) == name and namespace(el) in ACCEPTED_NS


def children(el: etree._Element, name: str) -> Iterator[etree._Element]:
    for child in el:
        if is_ofd(child, name):
            yield child


def child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return next(children(el, name), None)


def descendants(el: etree._Element, name: str) -> Iterator[etree._Element]:
    for node in el.iter():
        if is_ofd(node, name):
            yield node


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

"""Rewriting zips for tamper tests."""

from __future__ import annotations

import io
import zipfile


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}


def raw_members(data: bytes) -> dict[str, bytes]:
    """Each member's stored (compressed) bytes."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            head = data[info.header_offset: info.header_offset + 30]
            start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(
                head[28:30], "little")
            out[info.filename] = data[start: start + info.compress_size]
    return out


def replace_member(data: bytes, name: str, new: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, new if info.filename == name else src.read(info))
    return buf.getvalue()


def flip_byte(data: bytes, name: str, at: float = 0.5) -> bytes:
    content = bytearray(members(data)[name])
    i = min(int(len(content) * at), len(content) - 1)
    # Inside XML, change a digit or letter to another of its kind so the XML stays well formed.
    c = content[i]
    if 48 <= c <= 57:
        content[i] = 48 + (c - 48 + 1) % 10
    elif 65 <= c <= 90 or 97 <= c <= 122:
        content[i] = c ^ 0x20
    else:
        content[i] = c ^ 0x01
    return replace_member(data, name, bytes(content))


def build_zip(entries: dict[str, bytes], stored: bool = False) -> bytes:
    """A fresh zip of these members (another producer's package, or an attacker's)."""
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in entries.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), content, compress_type=method)
    return buf.getvalue()


def resign(sealed: bytes, kit, *, drop: tuple[str, ...] = (), add: tuple[str, ...] = (),
           extra: dict[str, bytes] | None = None) -> bytes:
    """Re-make the first seal of ``sealed`` as another vendor's software might: its References leave out
    the members in ``drop`` and also name those in ``add``; ``extra`` members are put in the package first.
    The new signature is genuine (the kit's seal and key), so only coverage can tell."""
    import base64
    import re
    from datetime import UTC, datetime

    from stamping.gm.sm3 import sm3
    from stamping.ses.make import make_signature

    parts = {**members(sealed), **(extra or {})}
    sig_name = "Doc_0/Signs/Sign_0/Signature.xml"
    xml = parts[sig_name].decode()
    for name in (n for n in drop if n not in (extra or {})):
        xml, n = re.subn(rf'<ofd:Reference FileRef="/{re.escape(name)}">.*?</ofd:Reference>', "", xml)
        assert n == 1, name
    for name in extra or {}:
        xml = re.sub(rf'<ofd:Reference FileRef="/{re.escape(name)}">.*?</ofd:Reference>', "", xml)
        if name not in drop:
            add = (*add, name)
    for name in add:
        ref = (f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{base64.b64encode(sm3(parts[name])).decode()}'
               "</ofd:CheckValue></ofd:Reference>")
        xml = xml.replace("</ofd:References>", ref + "</ofd:References>")
    parts[sig_name] = xml.encode()
    parts["Doc_0/Signs/Sign_0/SignedValue.dat"] = make_signature(
        kit.seal_der, sm3(parts[sig_name]), "/" + sig_name, kit.signer, datetime.now(UTC))
    return build_zip(parts)

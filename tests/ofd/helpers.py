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

    from gmpki.gm.sm3 import sm3
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


def digital_signed_value(signature_xml: bytes, signer, *, shape: str = "wrapped") -> bytes:
    """A GB/T 35275 SignedData over SM3(Signature.xml) in the shapes ofdrw writes: ``bare`` (older
    ofdrw: the SignedData alone, the digest as content, the signature over it), ``wrapped`` (the same
    in a signedData ContentInfo) or ``pkcs9`` (wrapped, the digest in a signed messageDigest attribute)."""
    pkcs9 = shape == "pkcs9"
    from asn1crypto import cms, core, x509

    from gmpki.gm.sm3 import sm3
    from gmpki.pki.der import der_length

    digest = sm3(signature_xml)
    cert = x509.Certificate.load(signer.certificate)
    sid = cms.SignerIdentifier({"issuer_and_serial_number": {"issuer": cert.issuer,
                                                               "serial_number": cert.serial_number}})
    info = {"version": "v1", "sid": sid, "digest_algorithm": {"algorithm": "1.2.156.10197.1.401"},
            "signature_algorithm": {"algorithm": "1.2.156.10197.1.301.1"}}
    if pkcs9:
        attrs = cms.CMSAttributes([{"type": "content_type", "values": ["1.2.156.10197.6.1.4.2.1"]},
                                   {"type": "message_digest", "values": [digest]}])
        info["signed_attrs"] = attrs
        info["signature"] = signer.sign(b"\x31" + attrs.dump()[1:])
        content = None
    else:
        info["signature"] = signer.sign(digest)
        content = digest
    sd = cms.SignedData({"version": "v1", "digest_algorithms": [{"algorithm": "1.2.156.10197.1.401"}],
                         "encap_content_info": {"content_type": "1.2.156.10197.6.1.4.2.1"},
                         "certificates": [cert], "signer_infos": [info]})
    der = sd.dump()
    if content is not None:  # ContentInfo{data, [0] EXPLICIT OCTET STRING digest}, spliced in by hand
        bare_info = cms.ContentInfo({"content_type": "1.2.156.10197.6.1.4.2.1"}).dump()
        octets = core.OctetString(content).dump()
        body = bare_info[2:] + b"\xa0" + der_length(len(octets)) + octets
        with_content = b"\x30" + der_length(len(body)) + body
        inner = sd.contents.replace(bare_info, with_content, 1)
        der = b"\x30" + der_length(len(inner)) + inner
    if shape == "bare":
        return der
    oid = core.ObjectIdentifier("1.2.156.10197.6.1.4.2.2").dump()
    explicit = b"\xa0" + der_length(len(der)) + der
    return b"\x30" + der_length(len(oid) + len(explicit)) + oid + explicit


def as_digital_signature(sealed: bytes, signer, *, shape: str = "wrapped") -> bytes:
    """Our single seal turned into a Type=Sign signature (电子签名): no Seal.esl, a GB/T 35275 value."""
    import re

    parts = members(sealed)
    sign_dir = "Doc_0/Signs/Sign_0"
    del parts[f"{sign_dir}/Seal.esl"]
    parts["Doc_0/Signs/Signatures.xml"] = parts["Doc_0/Signs/Signatures.xml"].replace(b'Type="Seal"', b'Type="Sign"')
    xml = parts[f"{sign_dir}/Signature.xml"].decode()
    xml = re.sub(rf'<ofd:Reference FileRef="/{sign_dir}/Seal.esl">.*?</ofd:Reference>', "", xml)
    xml = re.sub(r"<ofd:Seal>.*?</ofd:Seal>", "", xml)
    parts[f"{sign_dir}/Signature.xml"] = xml.encode()
    parts[f"{sign_dir}/SignedValue.dat"] = digital_signed_value(xml.encode(), signer, shape=shape)
    return build_zip(parts)

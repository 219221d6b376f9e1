"""Read a certificate's expiry (notAfter) from its DER bytes, with the standard library only.

`ssl` exposes the parsed certificate only when it was verified; with verification off
(`tls_verify: false`, e.g. a sandbox behind Caddy's internal CA) it still gives the raw
DER via getpeercert(binary_form=True). X.509 puts the validity early in the
TBSCertificate, so a few DER length-prefixed fields are all there is to walk:

    Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
        [0] version OPTIONAL, serialNumber, signature, issuer,
        validity SEQUENCE { notBefore Time, notAfter Time }, ... }, ... }
"""

from __future__ import annotations

from datetime import UTC, datetime

UTC_TIME, GENERALIZED_TIME, CONTEXT_0 = 0x17, 0x18, 0xA0


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """The (tag, content start, content end) of the DER element at `pos`."""
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[pos:pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii").rstrip("Z").split(".")[0]
    if tag == UTC_TIME:      # YYMMDDHHMM[SS]Z, years 50-99 are 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != GENERALIZED_TIME:
        raise ValueError("validity is not a time")
    fmt = "%Y%m%d%H%M%S" if len(text) == 14 else "%Y%m%d%H%M"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def not_after(der: bytes) -> datetime:
    """The certificate's notAfter as an aware UTC datetime; ValueError if it is not a certificate."""
    try:
        _, pos, _ = _tlv(der, 0)                 # Certificate
        _, pos, _ = _tlv(der, pos)               # tbsCertificate
        tag, _, end = _tlv(der, pos)
        if tag == CONTEXT_0:                     # explicit version, skip it
            pos = end
        for _ in range(3):                       # serialNumber, signature, issuer
            _, _, pos = _tlv(der, pos)
        _, pos, _ = _tlv(der, pos)               # validity
        _, _, pos = _tlv(der, pos)               # notBefore
        tag, start, end = _tlv(der, pos)         # notAfter
        return _time(tag, der[start:end])
    except (IndexError, UnicodeDecodeError) as e:
        raise ValueError(f"not a DER certificate: {e}") from None

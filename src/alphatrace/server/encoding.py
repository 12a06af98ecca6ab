"""Content-Encoding of request bodies: gzip and deflate, decoded with a bound on the result.

Exporters compress by default (the OTel Collector's otlphttp exporter sends gzip), and a
compressed body says nothing about its decoded size: a 5 MB gzip body can inflate to 5 GB. So
the body is inflated incrementally (`zlib.decompressobj` with `max_length`) and decoding stops
as soon as the output passes the limit — the memory used is bounded by the limit, whatever the
ratio. Pure: bytes in, bytes out, errors as exceptions the route maps to 413 / 415 / 400.
"""

from __future__ import annotations

import zlib

SUPPORTED = ("gzip", "deflate", "identity")


class TooLarge(ValueError):
    """The decoded body passes the limit."""


class Unsupported(ValueError):
    """A content coding other than gzip, deflate or identity."""


class Undecodable(ValueError):
    """Bytes that are not a complete stream of the declared coding."""


def codings(header: str | None) -> list[str]:
    """The codings of a Content-Encoding header, in the order they were applied."""
    return [c.strip().lower() for c in (header or "").split(",") if c.strip()]


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body with its content codings undone (last applied first), at most `limit` bytes."""
    for coding in reversed(codings(content_encoding)):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = inflate(body, 16 + zlib.MAX_WBITS, limit, coding)
        elif coding == "deflate":
            # RFC 9110 deflate is the zlib format; some clients send raw deflate.
            zlib_format = len(body) >= 2 and (body[0] & 0x0F) == 8 and (body[0] << 8 | body[1]) % 31 == 0
            body = inflate(body, zlib.MAX_WBITS if zlib_format else -zlib.MAX_WBITS, limit, coding)
        else:
            raise Unsupported(coding)
    if len(body) > limit:
        raise TooLarge
    return body


def inflate(data: bytes, wbits: int, limit: int, name: str = "gzip") -> bytes:
    """Inflate `data` (several gzip members in a row are one body, as in `gzip.decompress`)."""
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        buf = data
        try:
            while not d.eof:
                chunk = d.decompress(buf, limit + 1 - len(out))
                out += chunk
                if len(out) > limit:
                    raise TooLarge
                buf = d.unconsumed_tail
                if not buf and not chunk:  # input used up and nothing pending
                    break
        except zlib.error as e:
            raise Undecodable(f"body is not valid {name}: {e}") from None
        if not d.eof:
            raise Undecodable(f"body is not valid {name}: the stream is truncated")
        data = d.unused_data
        if not data:
            return bytes(out)
        if wbits != 16 + zlib.MAX_WBITS:
            raise Undecodable(f"body is not valid {name}: bytes after the end of the stream")

"""Evidence files for the demo: a site photo (PNG), a PDF report and Markdown notes, made on the spot
so the demo carries no binary files and every hash is real."""

from __future__ import annotations

import io
import struct
import zlib


def photo_png(width: int = 480, height: int = 300, tint: tuple[int, int, int] = (70, 110, 160)) -> bytes:
    """A small gradient 'photo' (a valid PNG any browser shows)."""
    r0, g0, b0 = tint
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            shade = (x * 90 // width) + (y * 60 // height)
            rows += bytes((min(255, r0 + shade), min(255, g0 + shade), min(255, b0 + shade // 2)))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def report_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF report rendered with xhtml2pdf."""
    from html import escape

    from xhtml2pdf import pisa

    body = "".join(f"<p>{escape(line)}</p>" for line in lines)
    html = f"<html><body><h1>{escape(title)}</h1>{body}</body></html>"
    out = io.BytesIO()
    pisa.CreatePDF(html, dest=out)
    return out.getvalue()


def notes_md(title: str, items: list[str]) -> bytes:
    return (f"# {title}\n\n" + "".join(f"- {item}\n" for item in items)).encode()

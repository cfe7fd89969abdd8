"""Sniffers of every registered format: what an object's first ``SNIFF_BYTES`` look like.

The engine sniffs each object against every format but imports a format's parser (and
its detectors) only when an object turns out to be of that format, so the sniffers live
here, apart from the parsers, with nothing but the standard library behind them. Each
format module takes its ``sniff`` from here, with the constants its parser shares with
the sniffer, so the registry and the module's ``SPEC`` hold the very same function.
"""

from __future__ import annotations

import struct

# PDF readers accept their header anywhere in the first KiB, so sniffers see that much.
SNIFF_BYTES = 1024


def sniff_never(head: bytes) -> bool:
    """For formats the engine reaches only by name (``jbig2-embedded``, ``appended``)."""
    return False


def sniff_zip(head: bytes) -> bool:
    return head.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def sniff_jpeg(head: bytes) -> bool:
    return head.startswith(b"\xff\xd8\xff")


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sniff_png(head: bytes) -> bool:
    return head.startswith(PNG_MAGIC)


HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                         b"hevs", b"mif1", b"mif2", b"msf1", b"avif", b"avis", b"avio"})
AVIF_BRANDS = frozenset({b"avif", b"avis", b"avio"})


def _ftyp_brands(head: bytes) -> list[bytes]:
    """The major brand and the compatible brands of a leading ``ftyp`` box (as far as
    ``head`` holds it)."""
    size = int.from_bytes(head[:4], "big")
    end = min(len(head), size if size >= 16 else 0)
    return [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]


def sniff_heif(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and any(b in HEIF_BRANDS for b in _ftyp_brands(head))


def sniff_gif(head: bytes) -> bool:
    return head[:6] in (b"GIF87a", b"GIF89a")


# TIFF header -> (struct byte order, BigTIFF)
TIFF_MAGICS = {b"II*\x00": ("<", False), b"MM\x00*": (">", False),
               b"II+\x00": ("<", True), b"MM\x00+": (">", True)}


def sniff_tiff(head: bytes) -> bool:
    return head[:4] in TIFF_MAGICS


SFNT_MAX_TABLES = 512
SFNT_MAX_FONTS = 256
TRUETYPE_VERSIONS = (b"\x00\x01\x00\x00", b"true")
CFF_VERSION = b"OTTO"
COLLECTION = b"ttcf"
_U16 = struct.Struct(">H")


def sniff_truetype(head: bytes) -> bool:
    if len(head) < 12:
        return False
    tag = head[:4]
    if tag == COLLECTION:
        version, count = struct.unpack_from(">II", head, 4)
        return version in (0x00010000, 0x00020000) and 1 <= count <= SFNT_MAX_FONTS
    if tag not in (*TRUETYPE_VERSIONS, CFF_VERSION):
        return False
    num = _U16.unpack_from(head, 4)[0]
    if not 1 <= num <= SFNT_MAX_TABLES:
        return False
    return len(head) < 16 or all(0x20 <= b <= 0x7E for b in head[12:16])


WOFF = b"wOFF"
WOFF2 = b"wOF2"


def sniff_woff(head: bytes) -> bool:
    """WOFF and WOFF2 both: the ``woff`` format hands a WOFF2 to its own reader."""
    return head[:4] in (WOFF, WOFF2)


PDF_HEADER = b"%PDF-"


def sniff_pdf(head: bytes) -> bool:
    return PDF_HEADER in head[:SNIFF_BYTES]


JBIG2_MAGIC = b"\x97JB2\r\n\x1a\n"


def sniff_jbig2(head: bytes) -> bool:
    return head.startswith(JBIG2_MAGIC)


def sniff_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"

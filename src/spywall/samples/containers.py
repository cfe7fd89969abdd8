"""Container samples: archives appended to images, nested zips, hostile member names,
zip bombs. Benign controls are made with Pillow and the standard library's zipfile."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from spywall.samples import Sample


def jpeg(size: tuple[int, int] = (16, 16)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def png(size: tuple[int, int] = (16, 16)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", size, (0, 90, 200, 255)).save(buf, "PNG")
    return buf.getvalue()


def zip_of(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_bomb(levels: int = 3, width: int = 10, leaf_mib: int = 50) -> bytes:
    """A nested zip bomb: ``width`` copies of the level below, ``levels`` deep."""
    data = zip_of({"zeros.bin": bytes(leaf_mib * 1024 * 1024)})
    for level in range(levels):
        data = zip_of({f"l{level}_{i}.zip": data for i in range(width)})
    return data


def samples() -> Iterator[Sample]:
    stage = zip_of({"lib/arm64-v8a/libstage.so": b"\x7fELF" + bytes(64)})
    yield Sample("jpeg-appended-zip.dng", jpeg() + stage, frozenset({"appended-archive"}),
                 "LANDFALL-style archive after the image's end")
    yield Sample("png-appended-zip.png", png() + stage, frozenset({"appended-archive"}))
    yield Sample("nested-appended.zip",
                 zip_of({"a/b.zip": zip_of({"photo.jpg": jpeg() + stage})}),
                 frozenset({"appended-archive"}), "finding two archives deep")
    yield Sample("jpeg-zip-then-stray-eoi.jpg", jpeg() + stage + b"\xff\xd9",
                 frozenset({"appended-archive"}),
                 "a stray EOI after the archive must not hide it")
    yield Sample("traversal-names.zip",
                 zip_of({"../../etc/passwd": b"root:x:0:0", "/abs/x.png": png()}),
                 frozenset(), "hostile names are only names")
    yield Sample("benign.jpg", jpeg(), frozenset())
    yield Sample("benign-padded.png", png() + bytes(512), frozenset(),
                 "zero padding after IEND is not an archive")
    yield Sample("benign.docx", zip_of({"[Content_Types].xml": b"<Types/>",
                                        "word/media/image1.png": png()}), frozenset())

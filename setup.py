"""Build of spywall's compiled helpers (Cython); the rest of the packaging is in
pyproject.toml: ``spywall.formats._glyphs`` (TrueType glyph selection),
``spywall.formats._bytescan`` (the JPEG marker search and a substring search for PDFs) and
``spywall.device._times`` (a column of Apple-epoch times written as text).

The extensions are optional: where they cannot be built (no C compiler), the install
still succeeds and the parsers use their Python paths (numpy, ``re``, ``bytes.find``,
``device.base.iso_apple``), which give the same results (tests compare the two whenever a helper is present).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("spywall.formats._glyphs", ["src/spywall/formats/_glyphs.pyx"],
                   optional=True),
         Extension("spywall.formats._bytescan", ["src/spywall/formats/_bytescan.pyx"],
                   depends=["src/spywall/formats/_bytescan_vec.h"],
                   include_dirs=["src/spywall/formats"], optional=True),
         Extension("spywall.device._times", ["src/spywall/device/_times.pyx"],
                   optional=True)],
        compiler_directives={"language_level": 3},
    )
)

"""Build of spywall's one compiled helper, ``spywall.formats._glyphs`` (Cython); the rest
of the packaging is in pyproject.toml.

The extension is optional: where it cannot be built (no C compiler), the install still
succeeds and ``formats/truetype.py`` uses its numpy path, which gives the same results
(tests compare the two whenever the helper is present).
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [Extension("spywall.formats._glyphs", ["src/spywall/formats/_glyphs.pyx"],
                   optional=True)],
        compiler_directives={"language_level": 3},
    )
)

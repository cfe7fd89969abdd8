# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled byte searches for the hot loops of large inputs (``jpeg.py``, ``pdf_raw.py``).

``next_marker`` finds the next marker in JPEG entropy-coded data, as the pattern
``jpeg._NEXT_MARKER`` does: the first 0xFF followed by a marker byte (not a stuffed zero,
a restart marker or fill), then back to the start of its run of 0xFF. ``find`` is the
first occurrence of a byte string. Both compare 32 bytes at a time
(``_bytescan_vec.h``); the byte-at-a-time search for 0xFF or the first byte alone
(``memchr``) stopped every 256 bytes or so in image data, about half as fast. The regex/``bytes.find`` versions stay as the
fallback (no C compiler at install time) and as the reference: tests compare the two on
any bytes, on hostile runs and on real files.

Hostile input: the inputs are read-only contiguous buffers (``bytes`` or a read-only
``mmap``); every start is clamped to the buffer first, and the C scans read no byte at
or past its end (a block is compared only when all of it lies inside). A long run of
0xFF costs one pass forward and one back.
"""

from libc.string cimport memchr


cdef extern from "_bytescan_vec.h":
    Py_ssize_t sw_ff_marker(const unsigned char *data, Py_ssize_t n, Py_ssize_t pos)
    Py_ssize_t sw_find(const unsigned char *data, Py_ssize_t n, const unsigned char *needle,
                       Py_ssize_t m, Py_ssize_t pos)


def next_marker(const unsigned char[::1] data, Py_ssize_t pos):
    """(offset of the 0xFF run, marker byte, offset after it) of the next marker at or
    after ``pos``, or None (as ``jpeg._NEXT_MARKER.search(data, pos)``): the first 0xFF
    followed by a marker byte, and the run of 0xFF (fill) it ends, from ``pos`` on."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t at, start
    if pos < 0:
        pos = 0
    if pos >= n:
        return None
    at = sw_ff_marker(&data[0], n, pos)
    if at < 0:
        return None
    start = at
    while start > pos and data[start - 1] == 0xFF:
        start -= 1
    return (start, data[at + 1], at + 2)


def find(const unsigned char[::1] data, const unsigned char[::1] needle, Py_ssize_t start):
    """Offset of the first ``needle`` at or after ``start``, or -1 (as ``bytes.find``
    for a non-empty needle and a start within the buffer)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t m = needle.shape[0]
    cdef const unsigned char *hit
    if m == 0:
        raise ValueError("empty needle")
    if start < 0:
        start = 0
    if start >= n or m > n - start:
        return -1
    if m == 1:
        hit = <const unsigned char *> memchr(&data[start], needle[0], <size_t> (n - start))
        return -1 if hit == NULL else hit - &data[0]
    return sw_find(&data[0], n, &needle[0], m, start)

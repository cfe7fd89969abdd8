# cython: language_level=3, boundscheck=True, wraparound=False, initializedcheck=True
"""Compiled byte searches for the hot loops of large inputs (``jpeg.py``, ``pdf_raw.py``).

``next_marker`` finds the next marker in JPEG entropy-coded data, as the pattern
``jpeg._NEXT_MARKER`` does: ``memchr`` for a 0xFF, then a look at the byte after its run
of 0xFF (a stuffed zero or a restart marker goes on searching). ``find`` is the first
occurrence of a byte string (``memchr`` for its first byte, then ``memcmp``). The regex/``bytes.find`` versions stay as the
fallback (no C compiler at install time) and as the reference: tests compare the two on
any bytes, on hostile runs and on real files.

Hostile input: the inputs are read-only contiguous buffers (``bytes`` or a read-only
``mmap``); the only pointer arithmetic stays within ``[0, len)``: every start is clamped
to the buffer first, and no byte at or past its end is read.
"""

from libc.string cimport memchr, memcmp


def next_marker(const unsigned char[::1] data, Py_ssize_t pos):
    """(offset of the 0xFF run, marker byte, offset after it) of the next marker at or
    after ``pos``, or None (as ``jpeg._NEXT_MARKER.search(data, pos)``)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef const unsigned char *base
    cdef const unsigned char *p
    cdef const unsigned char *q
    cdef const unsigned char *end
    cdef unsigned char b
    if pos < 0:
        pos = 0
    if pos >= n:
        return None
    base = &data[0]
    p = base + pos
    end = base + n
    while p < end:
        q = <const unsigned char *> memchr(p, 0xFF, <size_t> (end - p))
        if q == NULL:
            return None
        p = q
        q += 1
        while q < end and q[0] == 0xFF:  # fill before a marker, or a run in the data
            q += 1
        if q == end:
            return None
        b = q[0]
        if b != 0x00 and not (0xD0 <= b <= 0xD7):
            return (p - base, b, q + 1 - base)
        p = q + 1  # a stuffed zero or a restart marker: entropy data goes on
    return None


def find(const unsigned char[::1] data, const unsigned char[::1] needle, Py_ssize_t start):
    """Offset of the first ``needle`` at or after ``start``, or -1 (as ``bytes.find``
    for a non-empty needle and a start within the buffer)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t m = needle.shape[0]
    cdef const unsigned char *base
    cdef const unsigned char *p
    cdef const unsigned char *last
    if m == 0:
        raise ValueError("empty needle")
    if start < 0:
        start = 0
    if start >= n or m > n - start:
        return -1
    base = &data[0]
    p = base + start
    last = base + n - m  # the last place a match can start
    while p <= last:
        p = <const unsigned char *> memchr(p, needle[0], <size_t> (last - p + 1))
        if p == NULL:
            return -1
        if memcmp(p, &needle[0], <size_t> m) == 0:
            return p - base
        p += 1
    return -1

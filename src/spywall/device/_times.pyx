# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled column conversions of times: Apple-epoch times to text
(``device.base.iso_apple_times``, ``device.timeline.mvt_apple_times``) and ISO texts to
MVT's form (``mvt_column``, for ``device.timeline.mvt_times``).

``iso_apple_column(values, fallback, mvt)`` is ``[iso_apple(v) for v in values]``, with
the same text for every value: a plain ``int`` that fits 64 bits and a plain ``float``
are converted here; None gives None; anything else (a huge integer, bool, an ``int`` or
``float`` subclass, text, bytes) is handed to ``fallback`` (the Python function) and its
answer kept. With ``mvt`` true, each time is written in MVT's form instead
(``YYYY-MM-DD HH:MM:SS.ffffff``, ``device.timeline.mvt_time`` of the ISO text) and
``fallback`` must answer in that form too.

The rules are those of ``iso_apple``: an integer past +-1e12 counts nanoseconds (its
microseconds exact, floor division), a float past +-1e12 is divided by 1e9; 0 means
absent; the unix time must lie in 1990..2100 (``_TS_MIN`` .. ``_TS_MAX``, NaN refused);
a float's microseconds are rounded half to even (Python's ``round``), carrying into the
next second. Tests compare this with the Python function on random and edge values.

``mvt_column(stamps, fallback)`` is ``[mvt_time(t) if t else t for t in stamps]``: the
device modules' two ISO forms (ASCII) are rewritten here, any other text by ``fallback``
(``mvt_time`` itself).

The date of a day number is the civil-from-days calculation of H. Hinnant's
"chrono-Compatible Low-Level Date Algorithms" (proleptic Gregorian, 400-year eras); all
the day numbers met here are positive (1990..2100).
"""

from libc.math cimport floor, fmod
from libc.string cimport memcpy

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    double PyFloat_AS_DOUBLE(object o)

APPLE_EPOCH = 978_307_200
TS_MIN = 631_152_000
TS_MAX = 4_102_444_800

cdef long long _EPOCH = 978_307_200
cdef long long _MIN = 631_152_000
cdef long long _MAX = 4_102_444_800
cdef long long _NS = 1_000_000_000
cdef long long _BIG = 1_000_000_000_000


cdef inline void _two(char* p, long v) noexcept:
    p[0] = <char> (48 + v // 10)
    p[1] = <char> (48 + v % 10)


cdef object _text(long long whole, long micro, bint mvt):
    """``_iso(whole, micro)`` (or, with ``mvt``, MVT's form of it): None outside
    1990..2100."""
    cdef long long day, z, era, doe, yoe, doy, mp, year, month, mday
    cdef long sec, i
    cdef Py_ssize_t n
    cdef char buf[32]
    if whole < _MIN or whole > _MAX:
        return None
    day = whole // 86_400
    sec = <long> (whole - day * 86_400)
    z = day + 719_468  # days from 0000-03-01
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    mday = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    _two(buf, <long> (year // 100))
    _two(buf + 2, <long> (year % 100))
    buf[4] = b'-'
    _two(buf + 5, <long> month)
    buf[7] = b'-'
    _two(buf + 8, <long> mday)
    buf[10] = b' ' if mvt else b'T'
    _two(buf + 11, sec // 3_600)
    buf[13] = b':'
    _two(buf + 14, (sec // 60) % 60)
    buf[16] = b':'
    _two(buf + 17, sec % 60)
    if micro or mvt:
        buf[19] = b'.'
        for i in range(6):
            buf[25 - i] = <char> (48 + micro % 10)
            micro //= 10
        n = 26
    else:
        n = 19
    if not mvt:
        buf[n] = b'Z'
        n += 1
    out = PyUnicode_New(n, 127)
    memcpy(PyUnicode_DATA(out), buf, n)
    return out


cdef object _from_int(long long v, bint mvt):
    cdef long long whole, ns
    if v > _BIG or v < -_BIG:  # nanoseconds since 2001 (|v| < 2**63 < 1e20)
        whole = v // _NS
        ns = v - whole * _NS
        if ns < 0:  # (floor division, as Python's divmod)
            whole -= 1
            ns += _NS
        return _text(whole + _EPOCH, <long> (ns // 1_000), mvt)
    if v == 0:
        return None
    return _text(v + _EPOCH, 0, mvt)


cdef object _from_float(double f, bint mvt):
    cdef long long whole
    cdef double x, r, d
    if f > 1e12 or f < -1e12:
        if f > 1e20 or f < -1e20:
            return None
        f = f / 1e9
    if f == 0.0:
        return None
    f = f + <double> _EPOCH
    if not (<double> _MIN <= f <= <double> _MAX):  # (also refuses NaN)
        return None
    whole = <long long> f  # (f > 0: truncation is the floor)
    if f == <double> whole:
        return _text(whole, 0, mvt)
    x = (f - <double> whole) * 1e6
    r = floor(x)  # round half to even, independent of the FPU's rounding mode
    d = x - r
    if d > 0.5 or (d == 0.5 and fmod(r, 2.0) != 0.0):
        r += 1.0
    if r >= 1e6:
        return _text(whole + 1, 0, mvt)
    return _text(whole, <long> r, mvt)


def iso_apple_column(values, fallback, bint mvt=False):
    """``[iso_apple(v) for v in values]`` (MVT's form with ``mvt``), plain ints and floats
    converted here, any other value but None by ``fallback``."""
    cdef list items = values if type(values) is list else list(values)
    cdef Py_ssize_t i, n = len(items)
    cdef list out = [None] * n
    cdef int overflow
    cdef long long v
    for i in range(n):
        item = items[i]
        if item is None:
            continue
        if type(item) is int:
            v = PyLong_AsLongLongAndOverflow(item, &overflow)
            if overflow:
                out[i] = fallback(item)
            else:
                out[i] = _from_int(v, mvt)
        elif type(item) is float:
            out[i] = _from_float(PyFloat_AS_DOUBLE(item), mvt)
        else:
            out[i] = fallback(item)
    return out


cdef extern from "Python.h":
    int PyUnicode_IS_ASCII(object o)


def mvt_column(stamps, fallback):
    """``[fallback(t) if t else t for t in stamps]`` where ``fallback`` is
    ``device.timeline.mvt_time``: the two ISO forms the device modules write,
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in ASCII, are rewritten here as ``mvt_time`` does
    (the letters it looks at in their places: ``T`` at 10, ``Z`` last, ``.`` at 19 in
    the longer one); any other text goes to ``fallback``, None and "" stay."""
    cdef list items = stamps if type(stamps) is list else list(stamps)
    cdef Py_ssize_t i, n = len(items), size
    cdef list out = [None] * n
    cdef const char* src
    cdef char* dst
    for i in range(n):
        item = items[i]
        if item is None:
            continue
        if type(item) is not str or not PyUnicode_IS_ASCII(item):
            out[i] = fallback(item) if item else item
            continue
        size = len(<str> item)
        src = <const char*> PyUnicode_DATA(item)
        if size == 27 and src[26] == b'Z' and src[19] == b'.' and src[10] == b'T':
            text = PyUnicode_New(26, 127)
            dst = <char*> PyUnicode_DATA(text)
            memcpy(dst, src, 26)
            dst[10] = b' '
        elif size == 20 and src[19] == b'Z' and src[10] == b'T':
            text = PyUnicode_New(26, 127)
            dst = <char*> PyUnicode_DATA(text)
            memcpy(dst, src, 19)
            memcpy(dst + 19, b".000000", 7)
            dst[10] = b' '
        elif size == 0:
            text = item
        else:
            text = fallback(item)
        out[i] = text
    return out

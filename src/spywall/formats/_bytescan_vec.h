/* Block scans for _bytescan.pyx: 32 bytes compared at once (two 16-byte vectors) (GCC/Clang vector extensions,
 * which compile to SSE2/AVX2/NEON as the target allows), then the block that holds a
 * candidate is searched byte by byte. Each function reads only data[0, n): a block is
 * compared only when all the bytes it loads (32, and the 32 after the first byte) lie in
 * the buffer; the rest is searched byte by byte. */
#include <stddef.h>
#include <string.h>

typedef unsigned char sw_u8x16 __attribute__((vector_size(16)));
typedef unsigned long long sw_u64x2 __attribute__((vector_size(16)));

#define SW_BLOCK 32

static inline sw_u8x16 sw_load(const unsigned char *p) {
    sw_u8x16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int sw_any(sw_u8x16 m) {
    sw_u64x2 w = (sw_u64x2) m;
    return (w[0] | w[1]) != 0;
}

/* The 16 bytes at p that are 0xFF and followed by a marker byte (0xFF each, else 0). */
static inline sw_u8x16 sw_ff_marker16(const unsigned char *p) {
    sw_u8x16 a = sw_load(p), b = sw_load(p + 1);
    return (sw_u8x16) ((a == 0xFF) & (b != 0x00) & (b != 0xFF) & ((b & 0xF8) != 0xD0));
}

/* The 16 bytes at p that start the pair c0 c1. */
static inline sw_u8x16 sw_pair16(const unsigned char *p, unsigned char c0, unsigned char c1) {
    return (sw_u8x16) ((sw_load(p) == c0) & (sw_load(p + 1) == c1));
}

/* A JPEG marker byte: what may follow 0xFF to end entropy-coded data (not a stuffed
 * zero, a restart marker or fill). */
static inline int sw_is_marker(unsigned char b) {
    return b != 0x00 && b != 0xFF && (b & 0xF8) != 0xD0;
}

/* First i >= pos with data[i] == 0xFF and data[i + 1] a marker byte; -1 if none. */
static Py_ssize_t sw_ff_marker(const unsigned char *data, Py_ssize_t n, Py_ssize_t pos) {
    Py_ssize_t i = pos, j;
    while (i + SW_BLOCK + 1 <= n) {
        if (sw_any(sw_ff_marker16(data + i) | sw_ff_marker16(data + i + 16))) {
            for (j = i; j < i + SW_BLOCK; j++)
                if (data[j] == 0xFF && sw_is_marker(data[j + 1]))
                    return j;
        }
        i += SW_BLOCK;
    }
    for (; i + 1 < n; i++)
        if (data[i] == 0xFF && sw_is_marker(data[i + 1]))
            return i;
    return -1;
}

/* First i >= pos with data[i:i + m] == needle (m >= 2); -1 if none. */
static Py_ssize_t sw_find(const unsigned char *data, Py_ssize_t n, const unsigned char *needle,
                          Py_ssize_t m, Py_ssize_t pos) {
    Py_ssize_t i = pos, j;
    unsigned char c0 = needle[0], c1 = needle[1];
    while (i + SW_BLOCK + 1 <= n) {
        if (sw_any(sw_pair16(data + i, c0, c1) | sw_pair16(data + i + 16, c0, c1))) {
            for (j = i; j < i + SW_BLOCK && j + m <= n; j++)
                if (data[j] == c0 && memcmp(data + j, needle, (size_t) m) == 0)
                    return j;
        }
        i += SW_BLOCK;
    }
    for (; i + m <= n; i++)
        if (data[i] == c0 && memcmp(data + i, needle, (size_t) m) == 0)
            return i;
    return -1;
}

/*
 * Small things every module uses: compiler attributes and array helpers.
 */
#ifndef INCUBATORD_COMMON_H
#define INCUBATORD_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fallible function's result must be looked at. */
#define WARN_UNUSED __attribute__((warn_unused_result))
/* printf-like functions are checked by the compiler. */
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that cannot fail: on exhaustion the process logs and aborts,
 * because no request can be served sensibly without memory. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void hex_encode(const unsigned char *bytes, size_t n, char *out);

/* Milliseconds of CLOCK_MONOTONIC: for deadlines and durations, never dates. */
int64_t mono_ms(void);
/* Microseconds of CLOCK_MONOTONIC, for latency measurements. */
int64_t mono_us(void);

#endif

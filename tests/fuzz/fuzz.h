/*
 * What the libFuzzer targets share: each defines LLVMFuzzerTestOneInput and
 * checks, besides "no crash, no leak, no undefined behaviour" (the sanitizers
 * see to those), properties of its parser that must hold for every input.
 * FUZZ_ASSERT aborts with the property's text, which libFuzzer reports as a
 * crash and saves the input of.
 */
#ifndef INCUBATORD_FUZZ_H
#define INCUBATORD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a NUL-terminated string (cut at its first NUL); the caller frees it. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif

/*
 * The Unified Social Credit Code (统一社会信用代码, GB 32100-2015): 18
 * characters from "0123456789ABCDEFGHJKLMNPQRTUWXY" (no I, O, S, V, Z), the
 * last a check character over the first 17 with weights 3^i mod 31.
 */
#ifndef INCUBATORD_USCC_H
#define INCUBATORD_USCC_H

#include <stdbool.h>

#define USCC_LEN 18

/* Whether code is exactly 18 upper-case characters of the charset with a right check character. */
bool uscc_valid(const char *code);
/* The check character for the first 17 characters, or '\0' if one is not in the charset. */
char uscc_check_char(const char *first17);

#endif

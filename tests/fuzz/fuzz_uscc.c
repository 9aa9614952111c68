/*
 * The Unified Social Credit Code check: any bytes. A code is valid exactly
 * when it is 18 characters of the charset whose last is the check character
 * of the first 17; changing that last character to any other one makes it
 * invalid.
 */
#include <stdbool.h>

#include "fuzz.h"
#include "incubatord/uscc.h"

static const char charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string(data, size);
    size_t len = strlen(s);
    bool valid = uscc_valid(s);

    if (valid) {
        FUZZ_ASSERT(len == USCC_LEN);
        FUZZ_ASSERT(strspn(s, charset) == USCC_LEN);
        FUZZ_ASSERT(uscc_check_char(s) == s[17]);
        char other[USCC_LEN + 1];
        memcpy(other, s, sizeof(other));
        for (const char *c = charset; *c; c++) {
            other[17] = *c;
            FUZZ_ASSERT(uscc_valid(other) == (*c == s[17]));
        }
    } else if (len == USCC_LEN && strspn(s, charset) == USCC_LEN) {
        FUZZ_ASSERT(uscc_check_char(s) != s[17]);
    }
    if (len >= 17) {
        char check = uscc_check_char(s);
        FUZZ_ASSERT(check == '\0' || strchr(charset, check) != NULL);
        FUZZ_ASSERT((check == '\0') == (strspn(s, charset) < 17));
    }
    free(s);
    return 0;
}

/*
 * Unified Social Credit Code check (GB 32100-2015, section 5 and annex B).
 */
#include <string.h>

#include "incubatord/uscc.h"

static const char charset[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/* 3^i mod 31 for i = 0..16 */
static const int weights[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};

static int value_of(char c)
{
    const char *p = c ? strchr(charset, c) : NULL;
    return p ? (int)(p - charset) : -1;
}

char uscc_check_char(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = value_of(first17[i]);
        if (v < 0)
            return '\0';
        sum += v * weights[i];
    }
    return charset[(31 - sum % 31) % 31];
}

bool uscc_valid(const char *code)
{
    if (strlen(code) != USCC_LEN || value_of(code[17]) < 0)
        return false;
    char check = uscc_check_char(code);
    return check != '\0' && check == code[17];
}

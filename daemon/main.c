/*
 * incubatord: arguments, then the daemon or one of its subcommands.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "incubatord/cli.h"
#include "incubatord/config.h"
#include "incubatord/migrate.h"
#include "incubatord/server.h"

static const char usage_text[] =
    "usage: incubatord [-c FILE] [-f] [COMMAND]\n"
    "\n"
    "Commands:\n"
    "  run                               run the daemon (the default)\n"
    "  migrate                           apply the embedded database schema\n"
    "  check-config [--print|--reference]\n"
    "                                    validate the configuration file; print it with\n"
    "                                    secrets masked, or print the key reference\n"
    "  token create --admin NAME         make an admin token and print it once\n"
    "  token create --incubator CODE NAME\n"
    "                                    make a token of one incubator and print it once\n"
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

static int token_command(const char *config, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "create") == 0) {
        if (argc == 3 && strcmp(argv[1], "--admin") == 0)
            return cli_token_create(config, NULL, argv[2]);
        if (argc == 4 && strcmp(argv[1], "--incubator") == 0)
            return cli_token_create(config, argv[2], argv[3]);
        return usage("token create takes --admin NAME or --incubator CODE NAME");
    }
    if (argc == 2 && strcmp(argv[0], "revoke") == 0)
        return cli_token_revoke(config, argv[1]);
    return usage("token takes create or revoke");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, {"foreground", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},         {"print", no_argument, NULL, 'p'},
        {"reference", no_argument, NULL, 'r'},    {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    bool foreground = false, print = false, reference = false;
    int opt;

    /*
     * Options may come before or after the command ("-c FILE migrate" or
     * "migrate -c FILE"); the token command's own words are left alone.
     */
    char *words[16];
    int nwords = 0;
    while (optind < argc) {
        if ((opt = getopt_long(argc, argv, "+c:fh", options, NULL)) != -1) {
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
            default:
                return usage(NULL);
            }
            continue;
        }
        if (nwords > 0 && strcmp(words[0], "token") == 0) {
            /* Everything after "token" is the token command's. */
            while (optind < argc && nwords < (int)(sizeof(words) / sizeof(words[0])))
                words[nwords++] = argv[optind++];
            break;
        }
        if (nwords >= (int)(sizeof(words) / sizeof(words[0])))
            return usage("too many arguments");
        words[nwords++] = argv[optind++];
    }

    const char *command = nwords > 0 ? words[0] : "run";
    if ((print || reference) && strcmp(command, "check-config") != 0)
        return usage("--print and --reference go with check-config");
    if (strcmp(command, "token") == 0)
        return token_command(config_file(config), nwords - 1, words + 1);
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

/*
 * The subcommands besides running the daemon: migrate, check-config,
 * token create/revoke. Those that need the database run the same pool and
 * schema code as the daemon, on a small event loop of their own.
 */
#ifndef INCUBATORD_CLI_H
#define INCUBATORD_CLI_H

#include <stdbool.h>

/* Exit codes: 0 success, 1 failure, 2 bad usage. */
int cli_migrate(const char *config_path);
int cli_check_config(const char *config_path, bool print_effective, bool print_reference);
/* expires_in_days: 1-3650, or 0 for a token that never expires. */
int cli_token_create(const char *config_path, const char *incubator_code, const char *name,
                     int expires_in_days);
int cli_token_revoke(const char *config_path, const char *id);

#endif

/*
 * The configuration file (INI, parsed with inih). Every key is declared once,
 * in the table in config.c: its section, name, type, default, range, whether
 * SIGHUP may change it, and one line of help. check-config, the reference in
 * docs/operations.md and reload all read that table.
 */
#ifndef INCUBATORD_CONFIG_H
#define INCUBATORD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "incubatord/common.h"

#define CONFIG_DEFAULT_PATH "/etc/incubatord/incubatord.conf"

struct config {
    /* [server] */
    char *listen;                /* "address:port", an IP address: no name lookup */
    int64_t max_body_bytes;      /* larger bodies get 413 */
    int64_t max_sync_body_bytes; /* the same for a bulk sync (ROUTE_BULK) */
    int request_timeout_ms;      /* a request is answered within this, 503 at worst */
    int max_connections;         /* beyond it, new connections wait in the kernel backlog */
    int idle_timeout_s;          /* an idle keep-alive connection is closed after this */
    int header_timeout_s;        /* a request head must arrive within this, however slowly */
    int body_timeout_s;          /* a body within this of its head; an answer taken within it */
    int max_connections_per_ip;  /* open connections from one address at most */
    int shutdown_timeout_ms;     /* SIGTERM waits this long for in-flight requests */
    int rate_limit_per_minute;   /* requests a token may make a minute; 0: no limit */
    int rate_limit_burst;        /* requests a token may make at once */
    char *metrics_allow;         /* who may read /metrics: "" everyone, else addresses/prefixes */
    /* [database] */
    char *conninfo;           /* libpq conninfo or URI; "" means the PG* environment */
    int pool_size;            /* connections in the pool, and in the read pool */
    char *read_conninfo;      /* a second pool for reads that may lag; "" for none */
    int read_max_lag_s;       /* above this replay lag, reads go to the primary pool */
    int max_queue;            /* requests waiting for a connection; beyond, 503 */
    int statement_timeout_ms; /* PostgreSQL statement_timeout on every connection */
    bool migrate_on_start;    /* migrate as soon as the database is reachable */
    /* [log] */
    bool log_syslog;
    char *log_ident;
    int log_facility;
    int log_level;
    /* [schedule] */
    char *timezone;          /* the bureau's zone: "today" and the payout schedule */
    int payout_day;          /* day of month of the payout run; past the end = last day */
    int payout_hour;         /* hour (0-23) of the payout run */
    bool payout_enabled;     /* compute last month's payout draft on schedule */
    int alert_sweep_seconds; /* period of the alert sweep */
    /* [payouts] */
    bool four_eyes; /* approval needs a review by another admin token name */
    /* [webhook] */
    char *webhook_url;            /* "" disables the webhook */
    char *webhook_secret;         /* HMAC-SHA256 key of the signature header */
    int webhook_timeout_ms;       /* one delivery attempt's limit */
    int webhook_retry_initial_ms; /* the first retry's delay; doubled per failure, jittered */
    int webhook_retry_max_ms;     /* the longest delay between two attempts */
    int webhook_retry_for_s;      /* an event is retried this long, then kept as failed */
    char *webhook_ca_file;        /* extra CA certificates (PEM) for an https receiver */
    /* [notify] */
    char *notify_ca_file;        /* extra CA certificates (PEM) for every channel; "" for none */
    char *notify_proxy;          /* the only proxy deliveries use; "" for none */
    int notify_timeout_ms;       /* one attempt of an API channel */
    int notify_retry_initial_ms; /* backoff of the API channels, as [webhook]'s */
    int notify_retry_max_ms;
    int notify_retry_for_s;
    /* [smtp] */
    char *smtp_host; /* "" : e-mail channels cannot send */
    int smtp_port;
    bool smtp_starttls;
    char *smtp_user;
    char *smtp_password;
    char *smtp_password_file;
    char *smtp_from;
    /* [console] */
    char *console_public_url; /* "" for no links in messages */
};

/* Fills cfg with the defaults of every key. */
void config_defaults(struct config *cfg);

/*
 * Reads and validates a file into cfg (which starts from the defaults). On
 * failure returns false with a message naming the line, section and key in err;
 * cfg is then left with defaults and must still be freed.
 */
bool config_load(const char *path, struct config *cfg, char *err, size_t errlen) WARN_UNUSED;

/*
 * Copies the reloadable keys of next into cur and logs each change; keys that
 * need a restart are kept and a warning names them. next is not modified.
 */
void config_apply_reload(struct config *cur, const struct config *next);

void config_free(struct config *cfg);

/* Writes the Markdown reference table of every key (for docs/operations.md). */
void config_write_reference(FILE *out);

/* Writes the effective configuration, secrets masked, as INI. */
void config_write_effective(FILE *out, const struct config *cfg);

/*
 * Whether the address ip (text) is in list, a [server] metrics_allow value
 * ("10.0.0.0/8, ::1"). With ip NULL: whether list is well-formed. An empty
 * list holds no address.
 */
bool config_address_listed(const char *list, const char *ip) WARN_UNUSED;

/* Splits "127.0.0.1:8080" or "[::1]:8080" into host and port. */
bool config_split_listen(const char *listen, char *host, size_t hostlen, int *port) WARN_UNUSED;

#endif

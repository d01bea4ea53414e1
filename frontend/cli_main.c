/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* wiregui: the administrator's command line (migrate, and later create-admin, status, ...). */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "web_conf.h"

enum cli_exit {
	CLI_OK = 0,
	CLI_ERROR = 1,
	CLI_USAGE = 2,
};

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *args;
	const char *help;
};

static int cmd_migrate(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct cli_command cli_commands[] = {
	{"migrate", cmd_migrate, "[-c CONFIG]", "apply pending database migrations"},
	{"help", cmd_help, "[COMMAND]", "show this help, or one command's"},
};

#define CLI_COMMANDS_LEN (sizeof(cli_commands) / sizeof(cli_commands[0]))

static const struct cli_command *command_find(const char *name)
{
	for (size_t i = 0; i < CLI_COMMANDS_LEN; i++)
		if (strcmp(cli_commands[i].name, name) == 0)
			return &cli_commands[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: wiregui COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < CLI_COMMANDS_LEN; i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s %s", cli_commands[i].name, cli_commands[i].args);
		fprintf(out, "  %-24s %s\n", left, cli_commands[i].help);
	}
	fprintf(out,
		"\noptions:\n"
		"  %-24s %s\n  %-24s %s\n"
		"\nCONFIG defaults to %s when that file exists.\n"
		"Environment variables WIREGUI_<SECTION>_<KEY> override it\n"
		"(e.g. WIREGUI_DATABASE_URL, WIREGUI_LOG_LEVEL).\n",
		"-h, --help", "show this help", "-V, --version", "print the version",
		WEB_CONF_DEFAULT_PATH);
}

static void command_usage(FILE *out, const struct cli_command *cmd)
{
	fprintf(out, "usage: wiregui %s %s\n  %s\n", cmd->name, cmd->args, cmd->help);
}

/* Parse "[-c CONFIG] [-h]"; CLI_OK, a usage error, or -1 after printing help. */
static int parse_config_opt(int argc, char **argv, const struct cli_command *cmd,
			    const char **ret_path)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 0; /* glibc: full re-initialisation */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			*ret_path = optarg;
			break;
		case 'h':
			command_usage(stdout, cmd);
			return -1;
		default:
			fprintf(stderr, "wiregui %s: bad option '%s'\n", cmd->name,
				argv[optind - 1]);
			command_usage(stderr, cmd);
			return CLI_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wiregui %s: unexpected argument '%s'\n", cmd->name, argv[optind]);
		command_usage(stderr, cmd);
		return CLI_USAGE;
	}
	return CLI_OK;
}

/* -c PATH, else the default file if present, else defaults + environment. */
static int load_conf(const char *path, struct web_conf *ret_conf)
{
	char err[512];

	if (path == NULL && access(WEB_CONF_DEFAULT_PATH, F_OK) == 0)
		path = WEB_CONF_DEFAULT_PATH;
	if (web_conf_load(path, ret_conf, err, sizeof(err)) < 0) {
		log_err("configuration: %s", err);
		return -1;
	}
	log_set_level(ret_conf->log_level);
	return 0;
}

/* Server notices (e.g. from a migration) go to our log, not raw to stderr. */
static void notice_log(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (msg == NULL)
		return;
	if (severity != NULL && strcmp(severity, "WARNING") == 0)
		log_warn("postgresql: %s", msg);
	else
		log_debug("postgresql: %s", msg);
}

/* libpq messages span lines ("...\n\tIs the server running..."): make them one line. */
static const char *one_line(const char *msg, char *buf, size_t len)
{
	size_t n = 0;
	bool space = false;

	for (const char *p = msg; *p != '\0' && n + 1 < len; p++) {
		if (isspace((unsigned char)*p)) {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < len)
			buf[n++] = ' ';
		space = false;
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return buf;
}

static PGconn *db_connect(const char *url)
{
	/* Entries before dbname are defaults the URL may override. */
	const char *const keys[] = {"fallback_application_name", "connect_timeout", "dbname", NULL};
	const char *const values[] = {"wiregui", "10", url, NULL};
	char err[256];

	if (db_conninfo_check(url, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return NULL;
	}
	PGconn *conn = PQconnectdbParams(keys, values, 1);

	if (conn == NULL) {
		log_err("cannot connect to the database: out of memory");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		/* The message names host and port, never the password. */
		char msg[512];

		log_err("cannot connect to the database: %s",
			one_line(PQerrorMessage(conn), msg, sizeof(msg)));
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, notice_log, NULL);
	return conn;
}

static int cmd_migrate(int argc, char **argv)
{
	const char *path = NULL;
	struct web_conf conf;
	char err[1024];
	int applied, version, r;
	PGconn *conn;

	r = parse_config_opt(argc, argv, command_find("migrate"), &path);
	if (r != CLI_OK)
		return r < 0 ? CLI_OK : r;
	if (load_conf(path, &conf) < 0)
		return CLI_ERROR;
	conn = db_connect(conf.database_url);
	web_conf_free(&conf);
	if (conn == NULL)
		return CLI_ERROR;
	r = migrate_run(conn, err, sizeof(err), &applied);
	if (r < 0) {
		log_err("migrate: %s", err);
		PQfinish(conn);
		return CLI_ERROR;
	}
	if (migrate_status(conn, &version) < 0) {
		log_err("migrate: cannot read the schema version: %s",
			one_line(PQerrorMessage(conn), err, sizeof(err)));
		PQfinish(conn);
		return CLI_ERROR;
	}
	PQfinish(conn);
	printf("migrated: applied %d migration(s), schema at version %d\n", applied, version);
	return CLI_OK;
}

static int cmd_help(int argc, char **argv)
{
	const struct cli_command *cmd;

	if (argc < 2) {
		usage(stdout);
		return CLI_OK;
	}
	cmd = command_find(argv[1]);
	if (cmd == NULL || argc > 2) {
		fprintf(stderr, "wiregui help: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return CLI_USAGE;
	}
	command_usage(stdout, cmd);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;

	log_init("wiregui", LOG_LVL_INFO);
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
		return cmd_help(1, argv);
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("wiregui %s\n", WIREGUI_VERSION);
		return CLI_OK;
	}
	cmd = command_find(argv[1]);
	if (cmd == NULL) {
		fprintf(stderr, "wiregui: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return CLI_USAGE;
	}
	return cmd->run(argc - 1, argv + 1);
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "agent_conf.h"
#include "config.h"
#include "fw_table.h"
#include "log.h"
#include "server.h"
#include "wg_iface.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wiregui-agent [-c CONFIG] [-t]\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"  -t, --check        check the configuration and exit\n"
		"  -V, --version      print the version and exit\n"
		"  -h, --help         this text\n",
		AGENT_CONF_DEFAULT_PATH);
}

/* The nftables table over its netlink backend; fatal when it cannot be had. */
static struct fw_table *fw_table_open(const struct agent_conf *conf)
{
	struct fw_backend *backend;
	char err[256];

	if (fw_nl_open(&backend, err, sizeof(err)) < 0)
		fatalx("cannot open the netfilter (nftables) netlink socket: %s", err);
	struct fw_table *fw = fw_table_new(conf, backend);
	if (fw == NULL)
		fatalx("out of memory for the nft table");
	return fw;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = AGENT_CONF_DEFAULT_PATH;
	int check_only = 0, c;

	log_init("wiregui-agent", LOG_LVL_INFO);
	while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check_only = 1;
			break;
		case 'V':
			printf("wiregui-agent %s\n", WIREGUI_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	struct agent_conf conf;
	char err[512];
	if (agent_conf_load(path, &conf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	log_set_level(conf.log_level);
	if (check_only) {
		log_info("%s: configuration is valid", path);
		agent_conf_free(&conf);
		return EXIT_SUCCESS;
	}

	/* Nothing the agent runs may gain privileges it does not have. */
	if (WIREGUI_SANDBOX && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("prctl(PR_SET_NO_NEW_PRIVS)");

	if (sodium_init() < 0)
		fatalx("libsodium failed to initialise");
	struct server *srv = server_new(&conf);
	/* Before the interface is made: a netfilter socket that will not open stops us here. */
	struct fw_table *fw = fw_table_open(&conf);
	struct wg_iface *wg;
	if (wg_iface_open(&conf, &wg, err, sizeof(err)) < 0)
		fatalx("%s", err);
	log_info("wiregui-agent %s: interface %s (%s), nft table inet %s", WIREGUI_VERSION,
		 conf.interface, wg_iface_backend(wg) == WG_BACKEND_KERNEL ? "kernel" : "userspace",
		 conf.nft_table);
	int r = server_run(srv, wg, fw);
	server_free(srv);
	fw_table_free(fw);
	wg_iface_free(wg);
	agent_conf_free(&conf);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * agentctl: a small blocking client of wiregui-agent's socket, for the
 * system tests and the benchmarks. It speaks the protocol as the web does
 * (Hello first, every request answered in order) and checks that each
 * reply echoes its request's id.
 *
 *   agentctl -s SOCKET [-b BATCH] [-i IFACE] [-t SECONDS] [-T [-P PID]...] [-v] COMMAND ...
 *     hello             key=value lines: backend interface public_key listen_port
 *                       mtu addresses peers peers_generation max_peers max_batch
 *                       nft_table firewall_generation max_users max_rules
 *     ping              "ok"
 *     sync GEN FILE|-   full sync of the peers in FILE, BATCH (1000) a batch
 *     patch FILE|-      lines "+ PEERLINE" (upsert) and "- PUBKEY_B64" (remove)
 *     patcheach FILE|-  PEERLINEs: one PeersPatch per line upserting that peer,
 *                       then one per line removing it again, each timed from
 *                       its send to its Result: "upsert MS" / "remove MS"
 *                       lines (CLOCK_MONOTONIC, as -T), then "ok". What the
 *                       benchmarks time as a one-peer patch on an open
 *                       connection (the web's).
 *     stats             PUBKEY_B64 RX TX LATEST_HANDSHAKE ENDPOINT per peer
 *     fwsync GEN FILE|- firewall full sync of the spec in FILE: its users, then
 *                       its global rules, BATCH of them a batch; settings
 *                       all off (default accept) when FILE has no settings line
 *     fwpatch FILE|-    one FirewallPatch: FILE's user lines are upserts, each
 *                       with the rules naming it, its global rules upserts, its
 *                       "-" lines removals; a settings line makes it carry settings
 *   agentctl genpeers N V4NET V6NET [SEED]
 *                       N peer lines, keys and PSKs derived from SEED (1),
 *                       allowed IPs: host 2+i of V4NET (/32) and of V6NET (/128)
 *   agentctl genfw N V4NET V6NET [RULES]
 *                       a firewall spec: users 1..N, user i+1 with one device at
 *                       host 2+i of V4NET and of V6NET (genpeers' peer i) and
 *                       RULES (2, at most 1024) rules "u<i+1>r<k>", priority 10k:
 *                       odd k "dst=192.0.2.<i%256>/32 proto=tcp ports=443+j
 *                       accept", even k "dst=198.51.100.0/24 proto=udp
 *                       ports=1000+j-2000+j drop", j = (k-1)/2
 *
 * PEERLINE: PUBKEY_B64 [psk=B64] [keepalive=N] [allowed=CIDR[,CIDR...]];
 * empty lines and lines starting with '#' are skipped. Keys are decoded
 * whatever their length and CIDRs may have host bits set: the tool sends
 * what it is given, so that tests can watch the agent refuse it.
 *
 * Firewall spec lines (empty and '#' lines skipped), words in any order:
 *   settings [default=accept|drop] [isolation=on|off] [masq4=on|off] [masq6=on|off]
 *   user ID [active|disabled] [addr=IP[,IP...]]
 *   rule ID [user=ID] [prio=N] dst=CIDR [proto=tcp|udp|any] [ports=A[-B]] accept|drop
 *   - user ID          (fwpatch only: remove the user)
 *   - rule ID          (fwpatch only: remove a global rule)
 * ID: 32 hex digits are the 16 bytes; other text of 1 to 16 bytes ("1",
 * "alice", "r7") is zero-padded to 16. A rule with user=ID belongs to that
 * user, whose line may come anywhere in the file; without user= it is
 * global. A user is active unless "disabled"; addr= (which may repeat) and
 * dst= take an address or a CIDR, sent as given (host bits and all); ports
 * up to 4294967295 (B 0 or absent: port_to 0); prio a signed 32-bit number
 * (0). Protocol any and every setting off unless said.
 *
 * ping, sync, patch, patcheach, fwsync and fwpatch print "ok" or "error
 * CODE FIELD: MESSAGE" (FIELD "-" when the agent names none). Exit status: 0 ok, 1 the agent
 * answered with an error, 2 usage, input or connection trouble (said on
 * stderr). After an error Result the tool finishes the stream it was in and
 * checks that the same connection still answers a Ping: the agent must keep
 * it open.
 * -i replaces the interface name the HelloReply gave; -t is the longest
 * wait for any reply (default 120 s); -v traces every frame on stderr
 * ("agentctl: > PeersSyncEnd 13", "agentctl: < Result 13 OK -: message"), which
 * lets a test act at a given point of a stream.
 *
 * -T times the command's requests on the connection the Hello opened, as
 * the web (which keeps its connection) waits for them, and prints
 * "elapsed_ms MS" on stderr (CLOCK_MONOTONIC, microsecond resolution): sync
 * from sending PeersSyncBegin to the End's Result (encoding the batches
 * included; reading FILE, connecting and the Hello not), fwsync likewise,
 * patch, fwpatch and ping from the send to the Result, patcheach from the
 * first send to the last Result, stats from the request to the last reply. Printed only when the
 * agent answered (also for an error Result). Then "cpu_ms self MS sys MS",
 * the tool's own CPU time over the same span and the part of it spent in
 * the kernel, and for each -P PID (up to 4) "cpu_ms PID MS sys MS": the CPU
 * time all threads of process PID used meanwhile
 * (/proc/PID/task/TID/schedstat, nanoseconds; threads that ended in between
 * are not counted), e.g. the agent's and wireguard-go's, and its kernel
 * part (/proc/PID/stat's stime: clock ticks, often 10 ms).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "frame.h"
#include "key.h"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1, /* the agent answered with an error Result */
	EXIT_TROUBLE = 2, /* usage, input, connection or protocol problem */
};

#define DEFAULT_BATCH 1000u
#define DEFAULT_TIMEOUT 120u
#define MAX_BYTES_FIELD 64 /* decoded key or PSK in an input line */
#define GENPEERS_MAX 1000000u
#define MAX_CPU_PIDS 4

struct options {
	const char *socket;
	size_t batch;
	const char *interface;
	unsigned timeout;
	bool verbose;
	bool timing;
	unsigned long cpu_pids[MAX_CPU_PIDS]; /* -P */
	size_t n_cpu_pids;
};

struct conn {
	int fd;
	uint64_t next_id;
	Wiregui__HelloReply *hello;
	const char *interface; /* -i, or the HelloReply's first interface */
	bool verbose;
	const struct options *opts;
	/* -T: when the timed requests began, our CPU time and that of the -P processes then */
	struct timespec t0, cpu0;
	struct rusage ru0;
	int64_t pid_cpu0[MAX_CPU_PIDS], pid_sys0[MAX_CPU_PIDS];
};

struct peer_list {
	Wiregui__Peer **items;
	size_t n, cap;
};

struct key_list {
	ProtobufCBinaryData *items;
	size_t n, cap;
};

__attribute__((format(printf, 1, 2))) static int trouble(const char *fmt, ...)
{
	va_list ap;

	fputs("agentctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_TROUBLE;
}

static const char *error_code_name(Wiregui__ErrorCode code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&wiregui__error_code__descriptor, (int)code);
	return v != NULL ? v->name : "UNKNOWN_CODE";
}

static const char *io_error(int r)
{
	if (r == -ECONNRESET)
		return "the agent closed the connection";
	if (r == -ETIMEDOUT)
		return "no answer from the agent in time";
	return strerror(-r);
}

/* ---- numbers, base64, CIDRs --------------------------------------------- */

static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Standard base64 of any length (a multiple of 4 symbols, '=' padded). */
static int b64_decode(const char *s, uint8_t *out, size_t cap, size_t *ret_len)
{
	size_t len = strlen(s), pad = 0, n = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (len % 4 != 0)
		return -EINVAL;
	while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
		pad++;
	if (len / 4 * 3 - pad > cap)
		return -ENOSPC;
	for (size_t i = 0; i < len - pad; i++) {
		int v = b64_value(s[i]);
		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	*ret_len = n;
	return 0;
}

static int bytes_set(ProtobufCBinaryData *b, const uint8_t *data, size_t len)
{
	b->data = malloc(len ? len : 1);
	if (b->data == NULL)
		return -ENOMEM;
	memcpy(b->data, data, len);
	b->len = len;
	return 0;
}

static int bytes_from_b64(const char *s, ProtobufCBinaryData *ret)
{
	uint8_t buf[MAX_BYTES_FIELD];
	size_t len;
	int r = b64_decode(s, buf, sizeof(buf), &len);

	if (r == 0)
		r = bytes_set(ret, buf, len);
	explicit_bzero(buf, sizeof(buf));
	return r;
}

static void print_key(const ProtobufCBinaryData *key)
{
	char b64[WG_KEY_B64_LEN + 1];

	if (key->len != WG_KEY_LEN) {
		printf("invalid-key-of-%zu-bytes", key->len);
		return;
	}
	wg_key_to_base64(key->data, b64);
	fputs(b64, stdout);
}

static void print_cidr(const Wiregui__Cidr *c)
{
	struct ip_cidr cidr;
	char text[IP_CIDR_STRLEN];

	if (ip_cidr_from_bytes(c->address.data, c->address.len, c->prefix, IP_CIDR_ALLOW_HOST_BITS,
			       &cidr) < 0 ||
	    ip_cidr_format(&cidr, text, sizeof(text)) < 0) {
		printf("invalid-cidr");
		return;
	}
	fputs(text, stdout);
}

static void print_endpoint(const Wiregui__Endpoint *ep)
{
	char text[INET6_ADDRSTRLEN];

	if (ep == NULL || ep->address.len == 0) {
		fputs("-", stdout);
	} else if (ep->address.len == 4 &&
		   inet_ntop(AF_INET, ep->address.data, text, sizeof(text))) {
		printf("%s:%u", text, ep->port);
	} else if (ep->address.len == 16 &&
		   inet_ntop(AF_INET6, ep->address.data, text, sizeof(text))) {
		printf("[%s]:%u", text, ep->port);
	} else {
		printf("invalid-endpoint");
	}
}

/* ---- peers from text ----------------------------------------------------- */

static void peer_free(Wiregui__Peer *p)
{
	if (p == NULL)
		return;
	free(p->public_key.data);
	if (p->preshared_key.data != NULL)
		explicit_bzero(p->preshared_key.data, p->preshared_key.len);
	free(p->preshared_key.data);
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		free(p->allowed_ips[i]->address.data);
		free(p->allowed_ips[i]);
	}
	free(p->allowed_ips);
	free(p);
}

static void peer_list_free(struct peer_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		peer_free(l->items[i]);
	free(l->items);
	*l = (struct peer_list){0};
}

/*
 * Room for one more item in the array *items_ptr points at (n used, *cap
 * allocated, size bytes each): the new item's address (not counted yet in
 * n), or NULL when out of memory.
 */
static void *append_slot(void *items_ptr, size_t *cap, size_t n, size_t size)
{
	void **items = items_ptr;

	if (n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		void *p = realloc(*items, ncap * size);
		if (p == NULL)
			return NULL;
		*items = p;
		*cap = ncap;
	}
	return (char *)*items + n * size;
}

static int peer_list_add(struct peer_list *l, Wiregui__Peer *p)
{
	Wiregui__Peer **slot = append_slot(&l->items, &l->cap, l->n, sizeof(*slot));

	if (slot == NULL)
		return -ENOMEM;
	*slot = p;
	l->n++;
	return 0;
}

static void key_list_free(struct key_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].data);
	free(l->items);
	*l = (struct key_list){0};
}

static int key_list_add(struct key_list *l, const char *b64)
{
	ProtobufCBinaryData *slot = append_slot(&l->items, &l->cap, l->n, sizeof(*slot));
	int r = slot != NULL ? bytes_from_b64(b64, slot) : -ENOMEM;

	if (r == 0)
		l->n++;
	return r;
}

/* A CIDR (host bits may be set: sent as given) as a new message. */
static int cidr_new(const char *text, unsigned flags, Wiregui__Cidr **ret)
{
	struct ip_cidr cidr;
	Wiregui__Cidr *c;

	if (ip_cidr_parse(text, flags | IP_CIDR_ALLOW_HOST_BITS, &cidr) < 0)
		return -EINVAL;
	c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	wiregui__cidr__init(c);
	c->prefix = cidr.prefix;
	if (bytes_set(&c->address, cidr.addr.bytes, ip_family_len(cidr.addr.family)) < 0) {
		free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

/* "CIDR[,CIDR...]" (list modified) appended to *items, n of them. */
static int cidrs_add(char *list, unsigned flags, Wiregui__Cidr ***items, size_t *n)
{
	char *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		Wiregui__Cidr **ips = realloc(*items, (*n + 1) * sizeof(*ips));
		if (ips == NULL)
			return -ENOMEM;
		*items = ips;
		int r = cidr_new(tok, flags, &ips[*n]);
		if (r < 0)
			return r;
		(*n)++;
	}
	return 0;
}

/* One "name=value" option of a PEERLINE. */
static int peer_set_option(Wiregui__Peer *p, char *opt)
{
	uint64_t v;

	if (strncmp(opt, "psk=", 4) == 0) {
		free(p->preshared_key.data);
		p->preshared_key = (ProtobufCBinaryData){0};
		return bytes_from_b64(opt + 4, &p->preshared_key);
	}
	if (strncmp(opt, "keepalive=", 10) == 0) {
		if (parse_u64(opt + 10, UINT32_MAX, &v) < 0)
			return -EINVAL;
		p->persistent_keepalive = (uint32_t)v;
		return 0;
	}
	if (strncmp(opt, "allowed=", 8) == 0)
		return cidrs_add(opt + 8, 0, &p->allowed_ips, &p->n_allowed_ips);
	return -EINVAL;
}

/* PEERLINE (modified in place) into a new peer; where is "FILE:LINE". */
static int peer_parse(char *line, const char *where, Wiregui__Peer **ret_peer)
{
	char *save = NULL;
	char *tok = strtok_r(line, " \t", &save);
	Wiregui__Peer *p;

	if (tok == NULL)
		return trouble("%s: a public key is missing", where);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return trouble("out of memory");
	wiregui__peer__init(p);
	if (bytes_from_b64(tok, &p->public_key) < 0) {
		peer_free(p);
		return trouble("%s: bad public key '%s'", where, tok);
	}
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (peer_set_option(p, tok) < 0) {
			peer_free(p);
			return trouble("%s: bad peer option '%.40s'", where, tok);
		}
	}
	*ret_peer = p;
	return 0;
}

typedef int (*line_fn)(char *line, const char *where, void *data);

/* Calls fn for every line of path ("-": stdin) but empty and '#' lines. */
static int read_lines(const char *path, line_fn fn, void *data)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *line = NULL, where[300];
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t n;
	int r = 0;

	if (f == NULL)
		return trouble("%s: %s", path, strerror(errno));
	while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		snprintf(where, sizeof(where), "%s:%lu", path, lineno);
		r = fn(line, where, data);
	}
	if (r == 0 && ferror(f))
		r = trouble("%s: read error", path);
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	if (f != stdin)
		fclose(f);
	return r;
}

static int sync_line(char *line, const char *where, void *data)
{
	struct peer_list *peers = data;
	Wiregui__Peer *p = NULL;
	int r = peer_parse(line, where, &p);

	if (r != 0)
		return r;
	if (peer_list_add(peers, p) < 0) {
		peer_free(p);
		return trouble("out of memory");
	}
	return 0;
}

struct patch_input {
	struct peer_list upsert;
	struct key_list remove;
};

static int patch_line(char *line, const char *where, void *data)
{
	struct patch_input *in = data;

	if (line[0] == '+' && (line[1] == ' ' || line[1] == '\t'))
		return sync_line(line + 2, where, &in->upsert);
	if (line[0] == '-' && (line[1] == ' ' || line[1] == '\t')) {
		char *key = line + 2;
		key += strspn(key, " \t");
		key[strcspn(key, " \t")] = '\0';
		if (key_list_add(&in->remove, key) < 0)
			return trouble("%s: bad public key '%s'", where, key);
		return 0;
	}
	return trouble("%s: expected '+ PEERLINE' or '- PUBKEY'", where);
}

/* ---- the firewall from text ------------------------------------------------ */

#define FW_ID_BYTES 16
#define GENFW_MAX_RULES 1024u

/* A rule naming its user (user=ID): it joins that user once the whole file is read. */
struct scoped_rule {
	Wiregui__FirewallRule *rule; /* NULL once it joined */
	uint8_t user[FW_ID_BYTES];
	char *where;
};

/*
 * A firewall spec file. One FirewallPatch holds what it says: fwpatch sends
 * it as it is, fwsync streams its users and global rules.
 */
struct fw_input {
	bool patch; /* fwpatch: "- user" and "- rule" lines allowed */
	Wiregui__FirewallPatch *spec;
	size_t cap_users, cap_globals, cap_rm_users, cap_rm_rules;
	struct scoped_rule *scoped;
	size_t n_scoped, cap_scoped;
};

static void fw_input_free(struct fw_input *in)
{
	for (size_t i = 0; i < in->n_scoped; i++) {
		if (in->scoped[i].rule != NULL)
			protobuf_c_message_free_unpacked(&in->scoped[i].rule->base, NULL);
		free(in->scoped[i].where);
	}
	free(in->scoped);
	if (in->spec != NULL)
		protobuf_c_message_free_unpacked(&in->spec->base, NULL);
	*in = (struct fw_input){0};
}

/* 32 hex digits are the 16 bytes; other text of 1 to 16 bytes is zero-padded. */
static int fw_id_parse(const char *text, uint8_t id[FW_ID_BYTES])
{
	size_t len = strlen(text);

	memset(id, 0, FW_ID_BYTES);
	if (len == 2 * FW_ID_BYTES && strspn(text, "0123456789abcdefABCDEF") == len) {
		for (size_t i = 0; i < FW_ID_BYTES; i++) {
			char byte[3] = {text[2 * i], text[2 * i + 1], '\0'};
			id[i] = (uint8_t)strtoul(byte, NULL, 16);
		}
		return 0;
	}
	if (len == 0 || len > FW_ID_BYTES)
		return -EINVAL;
	memcpy(id, text, len);
	return 0;
}

static int fw_id_bytes(const char *text, ProtobufCBinaryData *ret)
{
	uint8_t id[FW_ID_BYTES];

	return fw_id_parse(text, id) < 0 ? -EINVAL : bytes_set(ret, id, sizeof(id));
}

/* tok is "name=VALUE": VALUE in *ret_value. */
static bool fw_opt(const char *tok, const char *name, const char **ret_value)
{
	size_t len = strlen(name);

	if (strncmp(tok, name, len) != 0 || tok[len] != '=')
		return false;
	*ret_value = tok + len + 1;
	return true;
}

/* value's index in words (NULL-terminated), or -EINVAL. */
static int fw_word(const char *value, const char *const *words)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(value, words[i]) == 0)
			return i;
	return -EINVAL;
}

static const char *const fw_on_off[] = {"off", "on", NULL};
/* In the order of the enums Protocol and Action. */
static const char *const fw_protos[] = {"any", "tcp", "udp", NULL};
static const char *const fw_actions[] = {"accept", "drop", NULL};

/* "A" or "A-B", each at most UINT32_MAX (the agent checks the port range). */
static int fw_ports_parse(const char *value, uint32_t *from, uint32_t *to)
{
	char buf[32];
	uint64_t a, b = 0;
	char *dash;

	if (snprintf(buf, sizeof(buf), "%s", value) >= (int)sizeof(buf))
		return -EINVAL;
	dash = strchr(buf, '-');
	if (dash != NULL) {
		*dash = '\0';
		if (parse_u64(dash + 1, UINT32_MAX, &b) < 0)
			return -EINVAL;
	}
	if (parse_u64(buf, UINT32_MAX, &a) < 0)
		return -EINVAL;
	*from = (uint32_t)a;
	*to = (uint32_t)b;
	return 0;
}

static int fw_prio_parse(const char *value, int32_t *ret)
{
	char *end;

	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
		return -EINVAL;
	*ret = (int32_t)v;
	return 0;
}

/* One word of a rule line after its id; a user= is kept in *scoped. */
static int fw_rule_option(Wiregui__FirewallRule *r, char *tok, struct scoped_rule *scoped,
			  bool *has_action)
{
	const char *v;
	int i;

	if (fw_opt(tok, "user", &v)) {
		scoped->rule = r;
		return fw_id_parse(v, scoped->user);
	}
	if (fw_opt(tok, "prio", &v))
		return fw_prio_parse(v, &r->priority);
	if (fw_opt(tok, "dst", &v)) {
		if (r->destination != NULL)
			return -EINVAL;
		return cidr_new(v, IP_CIDR_ALLOW_BARE, &r->destination);
	}
	if (fw_opt(tok, "proto", &v)) {
		if ((i = fw_word(v, fw_protos)) < 0)
			return i;
		r->protocol = (Wiregui__Protocol)i;
		return 0;
	}
	if (fw_opt(tok, "ports", &v))
		return fw_ports_parse(v, &r->port_from, &r->port_to);
	if ((i = fw_word(tok, fw_actions)) < 0)
		return i;
	r->action = (Wiregui__Action)i;
	*has_action = true;
	return 0;
}

/* The words of a rule line after "rule" into a new rule. */
static int fw_rule_parse(char **save, const char *where, Wiregui__FirewallRule **ret,
			 struct scoped_rule *scoped)
{
	Wiregui__FirewallRule *r = calloc(1, sizeof(*r));
	char *tok = strtok_r(NULL, " \t", save);
	bool has_action = false;

	if (r == NULL)
		return trouble("out of memory");
	wiregui__firewall_rule__init(r);
	if (tok == NULL || fw_id_bytes(tok, &r->id) < 0) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return trouble("%s: a rule needs an id (32 hex digits, or 1 to 16 bytes of text)",
			       where);
	}
	while ((tok = strtok_r(NULL, " \t", save)) != NULL)
		if (fw_rule_option(r, tok, scoped, &has_action) < 0) {
			protobuf_c_message_free_unpacked(&r->base, NULL);
			return trouble("%s: bad rule word '%.40s'", where, tok);
		}
	if (r->destination == NULL || !has_action) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return trouble("%s: a rule needs dst= and accept or drop", where);
	}
	*ret = r;
	return 0;
}

/* A rule line: global, or kept aside until its user is known. */
static int fw_rule_line(struct fw_input *in, char **save, const char *where)
{
	Wiregui__FirewallPatch *spec = in->spec;
	struct scoped_rule scoped = {0};
	Wiregui__FirewallRule *r = NULL;
	int ret = fw_rule_parse(save, where, &r, &scoped);

	if (ret != 0)
		return ret;
	if (scoped.rule != NULL) {
		struct scoped_rule *slot =
			append_slot(&in->scoped, &in->cap_scoped, in->n_scoped, sizeof(*slot));
		if (slot != NULL && (scoped.where = strdup(where)) != NULL) {
			*slot = scoped;
			in->n_scoped++;
			return 0;
		}
	} else {
		Wiregui__FirewallRule **slot =
			append_slot(&spec->upsert_global_rules, &in->cap_globals,
				    spec->n_upsert_global_rules, sizeof(*slot));
		if (slot != NULL) {
			*slot = r;
			spec->n_upsert_global_rules++;
			return 0;
		}
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return trouble("out of memory");
}

static int fw_user_option(Wiregui__FirewallUser *u, char *tok)
{
	const char *v;

	if (strcmp(tok, "active") == 0 || strcmp(tok, "disabled") == 0) {
		u->active = tok[0] == 'a';
		return 0;
	}
	if (fw_opt(tok, "addr", &v))
		return cidrs_add(tok + 5, IP_CIDR_ALLOW_BARE, &u->addresses, &u->n_addresses);
	return -EINVAL;
}

/* A user line: an upserted user (its rules join it later). */
static int fw_user_line(struct fw_input *in, char **save, const char *where)
{
	Wiregui__FirewallPatch *spec = in->spec;
	Wiregui__FirewallUser *u = calloc(1, sizeof(*u));
	char *tok = strtok_r(NULL, " \t", save);
	Wiregui__FirewallUser **slot;

	if (u == NULL)
		return trouble("out of memory");
	wiregui__firewall_user__init(u);
	u->active = true;
	if (tok == NULL || fw_id_bytes(tok, &u->id) < 0) {
		protobuf_c_message_free_unpacked(&u->base, NULL);
		return trouble("%s: a user needs an id (32 hex digits, or 1 to 16 bytes of text)",
			       where);
	}
	while ((tok = strtok_r(NULL, " \t", save)) != NULL)
		if (fw_user_option(u, tok) < 0) {
			protobuf_c_message_free_unpacked(&u->base, NULL);
			return trouble("%s: bad user word '%.40s'", where, tok);
		}
	slot = append_slot(&spec->upsert_users, &in->cap_users, spec->n_upsert_users,
			   sizeof(*slot));
	if (slot == NULL) {
		protobuf_c_message_free_unpacked(&u->base, NULL);
		return trouble("out of memory");
	}
	*slot = u;
	spec->n_upsert_users++;
	return 0;
}

static int fw_settings_option(Wiregui__FirewallSettings *fs, const char *tok)
{
	static const char *const names[] = {"isolation", "masq4", "masq6"};
	protobuf_c_boolean *flags[] = {&fs->client_isolation, &fs->masquerade_ipv4,
				       &fs->masquerade_ipv6};
	const char *v;
	int i;

	if (fw_opt(tok, "default", &v)) {
		if ((i = fw_word(v, fw_actions)) < 0)
			return i;
		fs->default_action = (Wiregui__Action)i;
		return 0;
	}
	for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
		if (fw_opt(tok, names[k], &v)) {
			if ((i = fw_word(v, fw_on_off)) < 0)
				return i;
			*flags[k] = i;
			return 0;
		}
	return -EINVAL;
}

static int fw_settings_line(struct fw_input *in, char **save, const char *where)
{
	Wiregui__FirewallSettings *fs;
	char *tok;

	if (in->spec->settings != NULL)
		return trouble("%s: settings given twice", where);
	fs = malloc(sizeof(*fs));
	if (fs == NULL)
		return trouble("out of memory");
	wiregui__firewall_settings__init(fs);
	in->spec->settings = fs;
	while ((tok = strtok_r(NULL, " \t", save)) != NULL)
		if (fw_settings_option(fs, tok) < 0)
			return trouble("%s: bad settings word '%.40s'", where, tok);
	return 0;
}

/* "- user ID" or "- rule ID": a removal (fwpatch only). */
static int fw_removal_line(struct fw_input *in, char **save, const char *where)
{
	Wiregui__FirewallPatch *spec = in->spec;
	const char *what = strtok_r(NULL, " \t", save);
	const char *id = strtok_r(NULL, " \t", save);
	bool user = what != NULL && strcmp(what, "user") == 0;
	ProtobufCBinaryData *slot;

	if (!in->patch)
		return trouble("%s: removals ('-' lines) are for fwpatch", where);
	if (what == NULL || (!user && strcmp(what, "rule") != 0) || id == NULL ||
	    strtok_r(NULL, " \t", save) != NULL)
		return trouble("%s: expected '- user ID' or '- rule ID'", where);
	if (user)
		slot = append_slot(&spec->remove_users, &in->cap_rm_users, spec->n_remove_users,
				   sizeof(*slot));
	else
		slot = append_slot(&spec->remove_global_rules, &in->cap_rm_rules,
				   spec->n_remove_global_rules, sizeof(*slot));
	if (slot == NULL)
		return trouble("out of memory");
	if (fw_id_bytes(id, slot) < 0)
		return trouble("%s: bad id '%.40s'", where, id);
	if (user)
		spec->n_remove_users++;
	else
		spec->n_remove_global_rules++;
	return 0;
}

static int fw_line(char *line, const char *where, void *data)
{
	static const struct {
		const char *word;
		int (*fn)(struct fw_input *in, char **save, const char *where);
	} kinds[] = {
		{"settings", fw_settings_line},
		{"user", fw_user_line},
		{"rule", fw_rule_line},
		{"-", fw_removal_line},
	};
	char *save = NULL;
	const char *word = strtok_r(line, " \t", &save);

	for (size_t i = 0; word != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(word, kinds[i].word) == 0)
			return kinds[i].fn(data, &save, where);
	return trouble("%s: expected a settings, user, rule or '-' line", where);
}

static int fw_user_cmp(const void *a, const void *b)
{
	const Wiregui__FirewallUser *x = *(const Wiregui__FirewallUser *const *)a;
	const Wiregui__FirewallUser *y = *(const Wiregui__FirewallUser *const *)b;

	return memcmp(x->id.data, y->id.data, FW_ID_BYTES);
}

/* Each user= rule joins its user, in the order of the file. */
static int fw_rules_join(struct fw_input *in, Wiregui__FirewallUser **by_id)
{
	const Wiregui__FirewallPatch *spec = in->spec;
	Wiregui__FirewallUser key = WIREGUI__FIREWALL_USER__INIT;
	const Wiregui__FirewallUser *keyp = &key;

	for (size_t i = 0; i < in->n_scoped; i++) {
		struct scoped_rule *sr = &in->scoped[i];
		key.id = (ProtobufCBinaryData){FW_ID_BYTES, sr->user};
		Wiregui__FirewallUser **found =
			bsearch(&keyp, by_id, spec->n_upsert_users, sizeof(*by_id), fw_user_cmp);
		if (found == NULL)
			return trouble("%s: user= names no user of the file", sr->where);
		Wiregui__FirewallUser *u = *found;
		Wiregui__FirewallRule **rules =
			realloc(u->rules, (u->n_rules + 1) * sizeof(*rules));
		if (rules == NULL)
			return trouble("out of memory");
		u->rules = rules;
		rules[u->n_rules++] = sr->rule;
		sr->rule = NULL;
	}
	return 0;
}

/* Read a spec file (path or "-") into in. */
static int fw_input_read(struct fw_input *in, const char *path, bool patch)
{
	Wiregui__FirewallUser **by_id;
	int r;

	*in = (struct fw_input){.patch = patch};
	in->spec = malloc(sizeof(*in->spec));
	if (in->spec == NULL)
		return trouble("out of memory");
	wiregui__firewall_patch__init(in->spec);
	if ((r = read_lines(path, fw_line, in)) != 0)
		return r;
	if (in->spec->n_upsert_users == 0 && in->n_scoped > 0)
		return trouble("%s: user= names no user of the file", in->scoped[0].where);
	if (in->n_scoped == 0)
		return 0;
	by_id = malloc(in->spec->n_upsert_users * sizeof(*by_id));
	if (by_id == NULL)
		return trouble("out of memory");
	memcpy(by_id, in->spec->upsert_users, in->spec->n_upsert_users * sizeof(*by_id));
	qsort(by_id, in->spec->n_upsert_users, sizeof(*by_id), fw_user_cmp);
	r = fw_rules_join(in, by_id);
	free(by_id);
	return r;
}

/* ---- the connection ------------------------------------------------------- */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_exact(int fd, uint8_t *buf, size_t len)
{
	size_t have = 0;

	while (have < len) {
		ssize_t n = read(fd, buf + have, len - have);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		have += (size_t)n;
	}
	return 0;
}

/* Every request carries request_id as its field 1: its offset, or 0 (none). */
static size_t request_id_offset(const ProtobufCMessage *msg)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "request_id");

	return f != NULL && f->type == PROTOBUF_C_TYPE_UINT64 ? f->offset : 0;
}

static uint64_t request_id_of(const ProtobufCMessage *msg)
{
	size_t off = request_id_offset(msg);

	return off ? *(const uint64_t *)(const void *)((const char *)msg + off) : 0;
}

static void request_id_set(ProtobufCMessage *msg, uint64_t id)
{
	size_t off = request_id_offset(msg);

	if (off)
		*(uint64_t *)(void *)((char *)msg + off) = id;
}

static int conn_send(struct conn *c, uint16_t type, const ProtobufCMessage *msg)
{
	uint8_t *buf;
	size_t len;
	int r = frame_encode(type, msg, &buf, &len);

	if (r < 0)
		return trouble("cannot encode %s: %s", frame_type_name(type), strerror(-r));
	r = write_all(c->fd, buf, len);
	explicit_bzero(buf, len); /* batches carry PSKs */
	free(buf);
	if (r < 0)
		return trouble("sending %s: %s", frame_type_name(type), io_error(r));
	if (c->verbose)
		fprintf(stderr, "agentctl: > %s %" PRIu64 "\n", frame_type_name(type),
			request_id_of(msg));
	return 0;
}

static void trace_reply(uint16_t type, const ProtobufCMessage *msg)
{
	const Wiregui__Result *res = (const Wiregui__Result *)msg;

	fprintf(stderr, "agentctl: < %s %" PRIu64, frame_type_name(type), request_id_of(msg));
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT)
		fprintf(stderr, " %s %s: %s", error_code_name(res->code),
			res->field[0] ? res->field : "-", res->message);
	fputc('\n', stderr);
}

/* The next frame from the agent, decoded: 0 or EXIT_TROUBLE. */
static int conn_recv(struct conn *c, uint16_t *ret_type, ProtobufCMessage **ret_msg)
{
	uint8_t head[FRAME_HEADER_LEN];
	struct frame_header hdr;
	uint8_t *payload;
	int r = read_exact(c->fd, head, sizeof(head));

	if (r < 0)
		return trouble("waiting for a reply: %s", io_error(r));
	if (frame_header_decode(head, &hdr) != WIREGUI__ERROR_CODE__OK)
		return trouble("bad frame header from the agent (length %" PRIu32
			       ", version %u, flags %u)",
			       hdr.length, hdr.version, hdr.flags);
	payload = malloc(hdr.length ? hdr.length : 1);
	if (payload == NULL)
		return trouble("out of memory");
	r = read_exact(c->fd, payload, hdr.length);
	if (r < 0) {
		free(payload);
		return trouble("reading a %s of %" PRIu32 " bytes: %s", frame_type_name(hdr.type),
			       hdr.length, io_error(r));
	}
	Wiregui__ErrorCode code = frame_decode(hdr.type, payload, hdr.length, ret_msg);
	free(payload);
	if (code != WIREGUI__ERROR_CODE__OK)
		return trouble("undecodable %s (type %u) from the agent: %s",
			       frame_type_name(hdr.type), hdr.type, error_code_name(code));
	if (c->verbose)
		trace_reply(hdr.type, *ret_msg);
	*ret_type = hdr.type;
	return 0;
}

static void print_error_result(const Wiregui__Result *res)
{
	printf("error %s %s: %s\n", error_code_name(res->code), res->field[0] ? res->field : "-",
	       res->message);
}

/*
 * The Result of request id: EXIT_OK, EXIT_REFUSED (an error Result, printed
 * if print is set) or EXIT_TROUBLE.
 */
static int conn_result(struct conn *c, uint64_t id, bool print)
{
	uint16_t type;
	ProtobufCMessage *msg;
	int r = conn_recv(c, &type, &msg);

	if (r != 0)
		return r;
	const Wiregui__Result *res = (const Wiregui__Result *)msg;
	if (type != WIREGUI__MSG_TYPE__MSG_RESULT)
		r = trouble("request %" PRIu64 ": expected a Result, got a %s", id,
			    frame_type_name(type));
	else if (res->request_id != id)
		r = trouble("request %" PRIu64 ": the Result is for request %" PRIu64, id,
			    res->request_id);
	else if (res->code != WIREGUI__ERROR_CODE__OK)
		r = EXIT_REFUSED;
	if (r == EXIT_REFUSED && print)
		print_error_result(res);
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

static uint64_t conn_next_id(struct conn *c)
{
	return c->next_id++;
}

/* Give msg the next request id, send it and wait for its Result. */
static int conn_request(struct conn *c, uint16_t type, ProtobufCMessage *msg, bool print)
{
	uint64_t id = conn_next_id(c);

	request_id_set(msg, id);
	int r = conn_send(c, type, msg);
	return r != 0 ? r : conn_result(c, id, print);
}

static int64_t ts_us(const struct timespec *t1, const struct timespec *t0)
{
	return (int64_t)(t1->tv_sec - t0->tv_sec) * 1000000 + (t1->tv_nsec - t0->tv_nsec) / 1000;
}

/* CPU time of all threads of process pid in ns (their schedstat's first field), or -1. */
static int64_t pid_cpu_ns(unsigned long pid)
{
	char path[64];
	struct dirent *e;
	int64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%lu/task", pid);
	d = opendir(path);
	if (d == NULL)
		return -1;
	/* agentctl has one thread: readdir_r (deprecated anyway) buys nothing. */
	// cppcheck-suppress readdirCalled
	while ((e = readdir(d)) != NULL) {
		unsigned long long ns;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%lu/task/%.20s/schedstat", pid, e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue; /* the thread just ended */
		if (fscanf(f, "%llu", &ns) == 1)
			sum += (int64_t)ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* System time of process pid in us (its stat's stime, whole ticks), or -1. */
static int64_t pid_sys_us(unsigned long pid)
{
	char path[64], buf[1024];
	unsigned long long stime;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%lu/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "pid (comm) ": state is field 3, stime field 15. */
	const char *p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 2, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu", &stime) != 1)
		return -1;
	return (int64_t)(stime * 1000000 / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static int64_t tv_us(const struct timeval *t1, const struct timeval *t0)
{
	return (int64_t)(t1->tv_sec - t0->tv_sec) * 1000000 + (t1->tv_usec - t0->tv_usec);
}

/* "cpu_ms WHO MS sys MS" */
static void print_cpu(const char *who, int64_t us, int64_t sys_us)
{
	fprintf(stderr, "cpu_ms %s %" PRId64 ".%03" PRId64 " sys %" PRId64 ".%03" PRId64 "\n", who,
		us / 1000, us % 1000, sys_us / 1000, sys_us % 1000);
}

/* -T: the timed part of a command starts (before its first send)... */
static void conn_timer_start(struct conn *c)
{
	if (!c->opts->timing)
		return;
	for (size_t i = 0; i < c->opts->n_cpu_pids; i++) {
		c->pid_cpu0[i] = pid_cpu_ns(c->opts->cpu_pids[i]);
		c->pid_sys0[i] = pid_sys_us(c->opts->cpu_pids[i]);
	}
	getrusage(RUSAGE_SELF, &c->ru0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c->cpu0);
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
}

/* ...and ends with the agent's last answer; r passes through. */
static int conn_timer_stop(const struct conn *c, int r)
{
	struct timespec t1, cpu1;
	struct rusage ru1;
	char who[32];

	if (!c->opts->timing || r == EXIT_TROUBLE)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu1);
	getrusage(RUSAGE_SELF, &ru1);
	int64_t us = ts_us(&t1, &c->t0);
	fprintf(stderr, "elapsed_ms %" PRId64 ".%03" PRId64 "\n", us / 1000, us % 1000);
	print_cpu("self", ts_us(&cpu1, &c->cpu0), tv_us(&ru1.ru_stime, &c->ru0.ru_stime));
	for (size_t i = 0; i < c->opts->n_cpu_pids; i++) {
		int64_t ns = pid_cpu_ns(c->opts->cpu_pids[i]);
		int64_t sys = pid_sys_us(c->opts->cpu_pids[i]);
		snprintf(who, sizeof(who), "%lu", c->opts->cpu_pids[i]);
		if (ns < 0 || c->pid_cpu0[i] < 0 || sys < 0 || c->pid_sys0[i] < 0)
			fprintf(stderr, "cpu_ms %s (gone)\n", who);
		else
			print_cpu(who, (ns - c->pid_cpu0[i]) / 1000, sys - c->pid_sys0[i]);
	}
	return r;
}

/* After an error Result the connection must still serve: EXIT_REFUSED if it does. */
static int conn_check_alive(struct conn *c)
{
	Wiregui__Ping ping = WIREGUI__PING__INIT;

	fflush(stdout);
	int r = conn_request(c, WIREGUI__MSG_TYPE__MSG_PING, &ping.base, true);
	if (r != EXIT_OK)
		return trouble("after the error, the connection no longer answers a Ping");
	return EXIT_REFUSED;
}

static int conn_hello(struct conn *c)
{
	Wiregui__Hello hello = WIREGUI__HELLO__INIT;
	uint16_t type;
	ProtobufCMessage *msg;
	int r;

	hello.request_id = conn_next_id(c);
	hello.protocol_version = FRAME_VERSION;
	hello.client = (char *)"agentctl";
	r = conn_send(c, WIREGUI__MSG_TYPE__MSG_HELLO, &hello.base);
	if (r == 0)
		r = conn_recv(c, &type, &msg);
	if (r != 0)
		return r;
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT) {
		/* A refusal (BUSY, VERSION...) may come before the Hello was read. */
		print_error_result((const Wiregui__Result *)msg);
		protobuf_c_message_free_unpacked(msg, NULL);
		return EXIT_REFUSED;
	}
	if (type != WIREGUI__MSG_TYPE__MSG_HELLO_REPLY) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return trouble("Hello answered by a %s", frame_type_name(type));
	}
	c->hello = (Wiregui__HelloReply *)msg;
	if (c->hello->request_id != hello.request_id)
		return trouble("HelloReply for request %" PRIu64 ", expected %" PRIu64,
			       c->hello->request_id, hello.request_id);
	if (c->interface == NULL && c->hello->n_interfaces > 0)
		c->interface = c->hello->interfaces[0]->name;
	return 0;
}

static int conn_open(struct conn *c, const struct options *o)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = o->timeout};

	c->fd = -1;
	c->next_id = 1;
	c->interface = o->interface;
	c->verbose = o->verbose;
	c->opts = o;
	if (strlen(o->socket) >= sizeof(sa.sun_path))
		return trouble("socket path too long: %s", o->socket);
	strcpy(sa.sun_path, o->socket);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return trouble("socket: %s", strerror(errno));
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return trouble("setsockopt: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return trouble("connect %s: %s", o->socket, strerror(errno));
	return conn_hello(c);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->hello != NULL)
		protobuf_c_message_free_unpacked(&c->hello->base, NULL);
}

static int conn_need_interface(const struct conn *c)
{
	if (c->interface == NULL)
		return trouble("the agent reports no interface (use -i)");
	return 0;
}

/* ---- commands -------------------------------------------------------------- */

static const char *backend_name(Wiregui__Backend b)
{
	switch (b) {
	case WIREGUI__BACKEND__BACKEND_NONE:
		return "none";
	case WIREGUI__BACKEND__BACKEND_KERNEL:
		return "kernel";
	case WIREGUI__BACKEND__BACKEND_USERSPACE:
		return "userspace";
	default:
		return "unknown";
	}
}

static int cmd_hello(struct conn *c, const struct options *o, char **argv)
{
	const Wiregui__HelloReply *h = c->hello;
	static const Wiregui__InterfaceSettings none = WIREGUI__INTERFACE_SETTINGS__INIT;
	const Wiregui__InterfaceSettings *ifs = h->n_interfaces > 0 ? h->interfaces[0] : &none;

	(void)o;
	(void)argv;
	printf("backend=%s\ninterface=%s\npublic_key=", backend_name(h->backend), ifs->name);
	if (ifs->public_key.len > 0)
		print_key(&ifs->public_key);
	printf("\nlisten_port=%" PRIu32 "\nmtu=%" PRIu32 "\naddresses=", ifs->listen_port,
	       ifs->mtu);
	for (size_t i = 0; i < ifs->n_addresses; i++) {
		if (i > 0)
			fputs(",", stdout);
		print_cidr(ifs->addresses[i]);
	}
	printf("\npeers=%" PRIu32 "\npeers_generation=%" PRIu64 "\nmax_peers=%" PRIu32
	       "\nmax_batch=%" PRIu32 "\n",
	       ifs->peer_count, h->peers_generation, h->max_peers, h->max_batch);
	printf("nft_table=%s\nfirewall_generation=%" PRIu64 "\nmax_users=%" PRIu32
	       "\nmax_rules=%" PRIu32 "\n",
	       h->nft_table, h->firewall_generation, h->max_users, h->max_rules);
	return EXIT_OK;
}

/*
 * A request answered by a Result, timed (-T): "ok", or the error printed and
 * the connection checked to still serve.
 */
static int request_once(struct conn *c, uint16_t type, ProtobufCMessage *msg)
{
	conn_timer_start(c);
	int r = conn_timer_stop(c, conn_request(c, type, msg, true));
	if (r == EXIT_OK)
		puts("ok");
	else if (r == EXIT_REFUSED)
		r = conn_check_alive(c);
	return r;
}

static int cmd_ping(struct conn *c, const struct options *o, char **argv)
{
	Wiregui__Ping ping = WIREGUI__PING__INIT;

	(void)o;
	(void)argv;
	return request_once(c, WIREGUI__MSG_TYPE__MSG_PING, &ping.base);
}

/*
 * One Batch or the End of a stream. Once a step was refused, the agent must
 * refuse every later one of the stream too: only the first error is printed.
 */
static int sync_step(struct conn *c, uint16_t type, ProtobufCMessage *msg, int *first)
{
	int r = conn_request(c, type, msg, *first == EXIT_OK);

	if (r == EXIT_OK && *first != EXIT_OK)
		return trouble("the agent accepted a %s after an error in the same stream",
			       frame_type_name(type));
	if (r == EXIT_REFUSED)
		*first = EXIT_REFUSED;
	return r == EXIT_TROUBLE ? r : 0;
}

/*
 * A full sync to send: the caller's Begin, Batch and End messages (request
 * ids are set here), and n entries that fill() puts into the Batch, from
 * entry from on, count of them.
 */
struct stream {
	uint16_t begin_type, batch_type, end_type;
	ProtobufCMessage *begin, *batch, *end;
	size_t n;
	void (*fill)(const struct stream *st, size_t from, size_t count);
	const void *entries;
};

/* Begin, the batches, End: EXIT_OK, EXIT_REFUSED (printed) or EXIT_TROUBLE. */
static int sync_stream(struct conn *c, const struct options *o, const struct stream *st, int *first)
{
	int r = conn_request(c, st->begin_type, st->begin, true);

	if (r != EXIT_OK)
		return r;
	for (size_t i = 0; i < st->n; i += o->batch) {
		st->fill(st, i, st->n - i < o->batch ? st->n - i : o->batch);
		r = sync_step(c, st->batch_type, st->batch, first);
		if (r != 0)
			return r;
	}
	r = sync_step(c, st->end_type, st->end, first);
	return r != 0 ? r : *first;
}

static int sync_send(struct conn *c, const struct options *o, const struct stream *st)
{
	int first = EXIT_OK;

	conn_timer_start(c);
	int r = conn_timer_stop(c, sync_stream(c, o, st, &first));
	if (r == EXIT_REFUSED)
		return conn_check_alive(c);
	if (r == EXIT_OK)
		puts("ok");
	return r;
}

static void peers_fill(const struct stream *st, size_t from, size_t count)
{
	const struct peer_list *peers = st->entries;
	Wiregui__PeersSyncBatch *batch = (Wiregui__PeersSyncBatch *)st->batch;

	batch->peers = peers->items + from;
	batch->n_peers = count;
}

static int peers_sync_send(struct conn *c, const struct options *o, uint64_t gen,
			   const struct peer_list *peers)
{
	Wiregui__PeersSyncBegin begin = WIREGUI__PEERS_SYNC_BEGIN__INIT;
	Wiregui__PeersSyncBatch batch = WIREGUI__PEERS_SYNC_BATCH__INIT;
	Wiregui__PeersSyncEnd end = WIREGUI__PEERS_SYNC_END__INIT;
	const struct stream st = {
		WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BEGIN,
		WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_BATCH,
		WIREGUI__MSG_TYPE__MSG_PEERS_SYNC_END,
		&begin.base,
		&batch.base,
		&end.base,
		peers->n,
		peers_fill,
		peers,
	};

	begin.interface = (char *)c->interface;
	begin.generation = gen;
	begin.total = (uint32_t)peers->n;
	end.generation = gen;
	return sync_send(c, o, &st);
}

static int cmd_sync(struct conn *c, const struct options *o, char **argv)
{
	struct peer_list peers = {0};
	uint64_t gen;
	int r;

	if (parse_u64(argv[0], UINT64_MAX, &gen) < 0)
		return trouble("sync: bad generation '%s'", argv[0]);
	r = conn_need_interface(c);
	if (r == 0)
		r = read_lines(argv[1], sync_line, &peers);
	if (r == 0 && peers.n > UINT32_MAX)
		r = trouble("sync: too many peers");
	if (r == 0)
		r = peers_sync_send(c, o, gen, &peers);
	peer_list_free(&peers);
	return r;
}

static int cmd_patch(struct conn *c, const struct options *o, char **argv)
{
	Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
	struct patch_input in = {0};
	int r;

	(void)o;
	r = conn_need_interface(c);
	if (r == 0)
		r = read_lines(argv[0], patch_line, &in);
	if (r == 0) {
		patch.interface = (char *)c->interface;
		patch.upsert = in.upsert.items;
		patch.n_upsert = in.upsert.n;
		patch.remove = in.remove.items;
		patch.n_remove = in.remove.n;
		r = request_once(c, WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, &patch.base);
	}
	peer_list_free(&in.upsert);
	key_list_free(&in.remove);
	return r;
}

/* One one-peer PeersPatch timed from its send to its Result: "WHAT MS" on stdout. */
static int patch_timed(struct conn *c, Wiregui__PeersPatch *patch, const char *what)
{
	struct timespec t0, t1;

	patch->interface = (char *)c->interface;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = conn_request(c, WIREGUI__MSG_TYPE__MSG_PEERS_PATCH, &patch->base, true);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r == EXIT_OK) {
		int64_t us = ts_us(&t1, &t0);
		printf("%s %" PRId64 ".%03" PRId64 "\n", what, us / 1000, us % 1000);
	}
	return r;
}

/* Every peer upserted by a patch of its own, then every one removed. */
static int patch_each(struct conn *c, const struct peer_list *peers)
{
	int r = EXIT_OK;

	for (size_t i = 0; r == EXIT_OK && i < peers->n; i++) {
		Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
		patch.n_upsert = 1;
		patch.upsert = &peers->items[i];
		r = patch_timed(c, &patch, "upsert");
	}
	for (size_t i = 0; r == EXIT_OK && i < peers->n; i++) {
		Wiregui__PeersPatch patch = WIREGUI__PEERS_PATCH__INIT;
		patch.n_remove = 1;
		patch.remove = &peers->items[i]->public_key;
		r = patch_timed(c, &patch, "remove");
	}
	return r;
}

static int cmd_patcheach(struct conn *c, const struct options *o, char **argv)
{
	struct peer_list peers = {0};
	int r;

	(void)o;
	r = conn_need_interface(c);
	if (r == 0)
		r = read_lines(argv[0], sync_line, &peers);
	if (r == 0) {
		conn_timer_start(c);
		r = conn_timer_stop(c, patch_each(c, &peers));
		if (r == EXIT_OK)
			puts("ok");
		else if (r == EXIT_REFUSED)
			r = conn_check_alive(c);
	}
	peer_list_free(&peers);
	return r;
}

static void print_stats(const Wiregui__StatsReply *reply)
{
	for (size_t i = 0; i < reply->n_peers; i++) {
		const Wiregui__PeerStats *ps = reply->peers[i];
		print_key(&ps->public_key);
		printf(" %" PRIu64 " %" PRIu64 " %" PRId64 " ", ps->rx_bytes, ps->tx_bytes,
		       ps->latest_handshake);
		print_endpoint(ps->endpoint);
		fputs("\n", stdout);
	}
}

/* One reply of a stats answer: 0 and *more, EXIT_REFUSED or EXIT_TROUBLE. */
static int stats_reply(struct conn *c, uint64_t id, bool *more)
{
	uint16_t type;
	ProtobufCMessage *msg;
	int r = conn_recv(c, &type, &msg);

	if (r != 0)
		return r;
	const Wiregui__StatsReply *reply = (const Wiregui__StatsReply *)msg;
	const Wiregui__Result *res = (const Wiregui__Result *)msg;
	if (type == WIREGUI__MSG_TYPE__MSG_RESULT && res->request_id == id &&
	    res->code != WIREGUI__ERROR_CODE__OK) {
		print_error_result(res);
		r = EXIT_REFUSED;
	} else if (type != WIREGUI__MSG_TYPE__MSG_STATS_REPLY) {
		r = trouble("StatsRequest %" PRIu64 " answered by a %s", id, frame_type_name(type));
	} else if (reply->request_id != id) {
		r = trouble("StatsReply for request %" PRIu64 ", expected %" PRIu64,
			    reply->request_id, id);
	} else {
		print_stats(reply);
		*more = reply->more;
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

static int cmd_stats(struct conn *c, const struct options *o, char **argv)
{
	Wiregui__StatsRequest req = WIREGUI__STATS_REQUEST__INIT;
	bool more = true;
	int r;

	(void)o;
	(void)argv;
	r = conn_need_interface(c);
	if (r != 0)
		return r;
	req.request_id = conn_next_id(c);
	req.interface = (char *)c->interface;
	conn_timer_start(c);
	r = conn_send(c, WIREGUI__MSG_TYPE__MSG_STATS_REQUEST, &req.base);
	while (r == 0 && more)
		r = stats_reply(c, req.request_id, &more);
	conn_timer_stop(c, r);
	return r == EXIT_REFUSED ? conn_check_alive(c) : r;
}

/* Users first, then global rules: entries from..from+count of them. */
static void fw_fill(const struct stream *st, size_t from, size_t count)
{
	const Wiregui__FirewallPatch *spec = st->entries;
	Wiregui__FirewallSyncBatch *batch = (Wiregui__FirewallSyncBatch *)st->batch;
	size_t nu = spec->n_upsert_users, end = from + count;
	size_t u0 = from < nu ? from : nu, u1 = end < nu ? end : nu;
	size_t g0 = from > nu ? from - nu : 0, g1 = end > nu ? end - nu : 0;

	batch->n_users = u1 - u0;
	batch->users = batch->n_users ? spec->upsert_users + u0 : NULL;
	batch->n_global_rules = g1 - g0;
	batch->global_rules = batch->n_global_rules ? spec->upsert_global_rules + g0 : NULL;
}

static int cmd_fwsync(struct conn *c, const struct options *o, char **argv)
{
	Wiregui__FirewallSyncBegin begin = WIREGUI__FIREWALL_SYNC_BEGIN__INIT;
	Wiregui__FirewallSyncBatch batch = WIREGUI__FIREWALL_SYNC_BATCH__INIT;
	Wiregui__FirewallSyncEnd end = WIREGUI__FIREWALL_SYNC_END__INIT;
	Wiregui__FirewallSettings settings = WIREGUI__FIREWALL_SETTINGS__INIT;
	struct fw_input in;
	uint64_t gen;

	if (parse_u64(argv[0], UINT64_MAX, &gen) < 0)
		return trouble("fwsync: bad generation '%s'", argv[0]);
	int r = fw_input_read(&in, argv[1], false);
	const Wiregui__FirewallPatch *spec = in.spec;
	if (r == 0 &&
	    (spec->n_upsert_users > UINT32_MAX || spec->n_upsert_global_rules > UINT32_MAX))
		r = trouble("fwsync: too many users or rules");
	if (r == 0) {
		const struct stream st = {
			WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BEGIN,
			WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_BATCH,
			WIREGUI__MSG_TYPE__MSG_FIREWALL_SYNC_END,
			&begin.base,
			&batch.base,
			&end.base,
			spec->n_upsert_users + spec->n_upsert_global_rules,
			fw_fill,
			spec,
		};
		begin.generation = end.generation = gen;
		begin.settings = spec->settings != NULL ? spec->settings : &settings;
		begin.total_users = (uint32_t)spec->n_upsert_users;
		begin.total_global_rules = (uint32_t)spec->n_upsert_global_rules;
		r = sync_send(c, o, &st);
	}
	fw_input_free(&in);
	return r;
}

static int cmd_fwpatch(struct conn *c, const struct options *o, char **argv)
{
	struct fw_input in;

	(void)o;
	int r = fw_input_read(&in, argv[0], true);
	if (r == 0)
		r = request_once(c, WIREGUI__MSG_TYPE__MSG_FIREWALL_PATCH, &in.spec->base);
	fw_input_free(&in);
	return r;
}

/* ---- genpeers --------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void gen_key(uint64_t *state, uint8_t out[WG_KEY_LEN])
{
	for (size_t i = 0; i < WG_KEY_LEN; i += 8) {
		uint64_t v = splitmix64(state);
		for (size_t j = 0; j < 8; j++)
			out[i + j] = (uint8_t)(v >> (8 * j));
	}
}

/* Room for hosts 2 .. n+1, below the network's last address. */
static bool net_has_hosts(const struct ip_cidr *net, uint64_t n)
{
	unsigned host_bits = ip_family_bits(net->addr.family) - net->prefix;

	return host_bits >= 40 || n + 2 < (1ull << host_bits);
}

static void addr_add(struct ip_addr *a, uint64_t offset)
{
	for (size_t i = ip_family_len(a->family); i > 0 && offset > 0; i--) {
		uint64_t sum = a->bytes[i - 1] + (offset & 0xff);
		a->bytes[i - 1] = (uint8_t)sum;
		offset = (offset >> 8) + (sum >> 8);
	}
}

static void print_host(const struct ip_cidr *net, uint64_t offset)
{
	struct ip_addr a = net->addr;
	char text[IP_ADDR_STRLEN];

	addr_add(&a, offset);
	ip_addr_format(&a, text, sizeof(text));
	printf("%s/%u", text, ip_family_bits(a.family));
}

/* Peer i depends only on (seed, i): a prefix of a longer list is the shorter list. */
static void gen_peer(uint64_t seed, uint64_t i, const struct ip_cidr *v4, const struct ip_cidr *v6)
{
	uint64_t state = splitmix64(&seed) + i * 0xd1342543de82ef95ull;
	uint8_t key[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN + 1];

	gen_key(&state, key);
	wg_key_to_base64(key, b64);
	printf("%s psk=", b64);
	gen_key(&state, key);
	wg_key_to_base64(key, b64);
	printf("%s keepalive=0 allowed=", b64);
	print_host(v4, i + 2);
	fputs(",", stdout);
	print_host(v6, i + 2);
	fputs("\n", stdout);
}

/* The arguments genpeers and genfw share: N V4NET V6NET [EXTRA], room for N hosts. */
static int gen_args(int argc, char **argv, const char *usage, uint64_t *n, struct ip_cidr *v4,
		    struct ip_cidr *v6)
{
	const char *name = usage + strlen("usage: ");
	int len = (int)strcspn(name, " ");

	if (argc < 3 || argc > 4)
		return trouble("%s", usage);
	if (parse_u64(argv[0], GENPEERS_MAX, n) < 0)
		return trouble("%.*s: bad count '%s' (at most %u)", len, name, argv[0],
			       GENPEERS_MAX);
	if (ip_cidr_parse(argv[1], 0, v4) < 0 || v4->addr.family != AF_INET)
		return trouble("%.*s: '%s' is not an IPv4 network", len, name, argv[1]);
	if (ip_cidr_parse(argv[2], 0, v6) < 0 || v6->addr.family != AF_INET6)
		return trouble("%.*s: '%s' is not an IPv6 network", len, name, argv[2]);
	if (!net_has_hosts(v4, *n) || !net_has_hosts(v6, *n))
		return trouble("%.*s: %s or %s has no room for %" PRIu64 " hosts", len, name,
			       argv[1], argv[2], *n);
	return 0;
}

static int gen_done(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return trouble("writing: %s", strerror(errno));
	return EXIT_OK;
}

static int cmd_genpeers(int argc, char **argv)
{
	struct ip_cidr v4, v6;
	uint64_t n, seed = 1;
	int r = gen_args(argc, argv, "usage: genpeers N V4NET V6NET [SEED]", &n, &v4, &v6);

	if (r != 0)
		return r;
	if (argc == 4 && parse_u64(argv[3], UINT64_MAX, &seed) < 0)
		return trouble("genpeers: bad seed '%s'", argv[3]);
	for (uint64_t i = 0; i < n; i++)
		gen_peer(seed, i, &v4, &v6);
	return gen_done();
}

/* User i+1: the device of peer i of genpeers, and its rules (see the manual above). */
static void gen_fw_user(uint64_t i, const struct ip_cidr *v4, const struct ip_cidr *v6,
			uint64_t rules)
{
	printf("user %" PRIu64 " active addr=", i + 1);
	print_host(v4, i + 2);
	fputs(",", stdout);
	print_host(v6, i + 2);
	fputs("\n", stdout);
	for (uint64_t k = 1; k <= rules; k++) {
		uint64_t j = (k - 1) / 2;
		printf("rule u%" PRIu64 "r%" PRIu64 " user=%" PRIu64 " prio=%" PRIu64 " ", i + 1, k,
		       i + 1, 10 * k);
		if (k % 2)
			printf("dst=192.0.2.%" PRIu64 "/32 proto=tcp ports=%" PRIu64 " accept\n",
			       i % 256, 443 + j);
		else
			printf("dst=198.51.100.0/24 proto=udp ports=%" PRIu64 "-%" PRIu64 " drop\n",
			       1000 + j, 2000 + j);
	}
}

static int cmd_genfw(int argc, char **argv)
{
	struct ip_cidr v4, v6;
	uint64_t n, rules = 2;
	int r = gen_args(argc, argv, "usage: genfw N V4NET V6NET [RULES]", &n, &v4, &v6);

	if (r != 0)
		return r;
	if (argc == 4 && parse_u64(argv[3], GENFW_MAX_RULES, &rules) < 0)
		return trouble("genfw: bad rule count '%s' (at most %u)", argv[3], GENFW_MAX_RULES);
	for (uint64_t i = 0; i < n; i++)
		gen_fw_user(i, &v4, &v6, rules);
	return gen_done();
}

/* ---- main ------------------------------------------------------------------- */

static const struct command {
	const char *name;
	int nargs;
	int (*fn)(struct conn *c, const struct options *o, char **argv);
} commands[] = {
	{"hello", 0, cmd_hello},   {"ping", 0, cmd_ping},	    {"sync", 2, cmd_sync},
	{"patch", 1, cmd_patch},   {"patcheach", 1, cmd_patcheach}, {"stats", 0, cmd_stats},
	{"fwsync", 2, cmd_fwsync}, {"fwpatch", 1, cmd_fwpatch},
};

static int usage(void)
{
	fputs("usage: agentctl -s SOCKET [-b BATCH] [-i IFACE] [-t SECONDS] [-T [-P PID]...] [-v]\n"
	      "                COMMAND\n"
	      "  hello | ping | sync GEN FILE|- | patch FILE|- | patcheach FILE|- | stats\n"
	      "  fwsync GEN FILE|- | fwpatch FILE|-\n"
	      "       agentctl genpeers N V4NET V6NET [SEED]\n"
	      "       agentctl genfw N V4NET V6NET [RULES]\n",
	      stderr);
	return EXIT_TROUBLE;
}

static int run_command(const struct command *cmd, const struct options *o, char **argv)
{
	struct conn c = {.fd = -1};
	int r = conn_open(&c, o);

	if (r == 0)
		r = cmd->fn(&c, o, argv);
	conn_close(&c);
	if (fflush(stdout) != 0 && r == EXIT_OK)
		r = trouble("writing: %s", strerror(errno));
	return r;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	uint64_t v;
	int ch;

	*o = (struct options){.batch = DEFAULT_BATCH, .timeout = DEFAULT_TIMEOUT};
	while ((ch = getopt(argc, argv, "+s:b:i:t:TP:vh")) != -1) {
		switch (ch) {
		case 's':
			o->socket = optarg;
			break;
		case 'b':
			if (parse_u64(optarg, UINT32_MAX, &v) < 0 || v == 0)
				return trouble("-b: bad batch size '%s'", optarg);
			o->batch = (size_t)v;
			break;
		case 'i':
			o->interface = optarg;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'T':
			o->timing = true;
			break;
		case 'P':
			if (o->n_cpu_pids == MAX_CPU_PIDS || parse_u64(optarg, INT32_MAX, &v) < 0 ||
			    v == 0)
				return trouble("-P: bad or one too many pid '%s'", optarg);
			o->cpu_pids[o->n_cpu_pids++] = (unsigned long)v;
			break;
		case 't':
			if (parse_u64(optarg, 86400, &v) < 0 || v == 0)
				return trouble("-t: bad timeout '%s'", optarg);
			o->timeout = (unsigned)v;
			break;
		default:
			return usage();
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;

	if (parse_options(argc, argv, &o) != 0)
		return EXIT_TROUBLE;
	argc -= optind;
	argv += optind;
	if (argc < 1)
		return usage();
	if (strcmp(argv[0], "genpeers") == 0)
		return cmd_genpeers(argc - 1, argv + 1);
	if (strcmp(argv[0], "genfw") == 0)
		return cmd_genfw(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if (argc - 1 != commands[i].nargs)
			return usage();
		if (o.socket == NULL)
			return trouble("%s needs -s SOCKET", argv[0]);
		return run_command(&commands[i], &o, argv + 1);
	}
	return usage();
}

/* SPDX-License-Identifier: AGPL-3.0-or-later */
/*
 * The agent's whole input path: bytes from the socket into the session
 * (frame header, length bound, protobuf decode, unknown-field check,
 * state machine, validation, handlers), with in-memory WireGuard and
 * nftables backends (the firewall's batches are built and parsed back as
 * for the kernel). The input is fed in two pieces split where its first
 * byte says (that byte is not input), to exercise partial frames.
 */
#include <stddef.h>
#include <stdint.h>

#include "fake_fw.h"
#include "fake_wg.h"
#include "frame.h"
#include "fuzz.h"
#include "log.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_conf conf = {
		.socket_path = (char *)"/nonexistent/agent.sock",
		.interface = (char *)"wgfuzz0",
		.nft_table = (char *)"wiregui_fuzz",
		.max_peers = 2000,
		.max_users = 1000,
		.max_rules = 4000,
		.listen_port = 51820,
		.mtu = 1420,
		/* 10.0.0.0/8 and fd00::/8: allowed IPs of any shape reach the backend. */
		.addresses = {.n = 2,
			      .items = {{{AF_INET, {10, 0, 0, 1}}, 8},
					{{AF_INET6,
					  {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
					 8}}},
		.peer_networks = {.n = 2, .items = {{{AF_INET, {10}}, 8}, {{AF_INET6, {0xfd}}, 8}}},
	};
	static const uint8_t key[WG_KEY_LEN] = {0x40, 9};
	log_set_level(LOG_LVL_ERR);
	if (size == 0)
		return 0;
	/* The first byte is not input: it says where the rest is split. */
	size_t split = data[0];
	data++;
	size--;
	if (split > size)
		split = size;
	struct fake_wg *fake = fake_wg_new(conf.interface);
	struct wg_iface *wg = fake ? wg_iface_new(&conf, &fake->base, key) : NULL;
	struct fake_fw *nft = fake_fw_new();
	struct fw_table *fw = nft ? fw_table_new(&conf, &nft->base) : NULL;
	struct session *s = wg && fw ? session_new(&conf, wg, fw) : NULL;
	if (s == NULL) {
		wg_iface_free(wg);
		fw_table_free(fw);
		return 0;
	}
	if (session_input(s, data, split) == 0)
		session_input(s, data + split, size - split);
	size_t len;
	const uint8_t *out = session_output(s, &len);
	/* Every reply the agent queues must itself be a well-formed frame. */
	while (len >= FRAME_HEADER_LEN) {
		struct frame_header h;
		if (frame_header_decode(out, &h) != WIREGUI__ERROR_CODE__OK ||
		    len < FRAME_HEADER_LEN + h.length)
			__builtin_trap();
		ProtobufCMessage *msg;
		if (frame_decode(h.type, out + FRAME_HEADER_LEN, h.length, &msg) !=
		    WIREGUI__ERROR_CODE__OK)
			__builtin_trap();
		protobuf_c_message_free_unpacked(msg, NULL);
		out += FRAME_HEADER_LEN + h.length;
		len -= FRAME_HEADER_LEN + h.length;
	}
	if (len != 0)
		__builtin_trap();
	session_free(s);
	wg_iface_free(wg);
	fw_table_free(fw);
	return 0;
}

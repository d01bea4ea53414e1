/* SPDX-License-Identifier: AGPL-3.0-or-later */
#include "link.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Our requests are small; replies are read in pieces of this size. */
#define RTNL_BUF 8192

/* Collects a message's attributes by type (types above max are skipped). */
struct attr_table {
	const struct nlattr **tb;
	uint16_t max;
};

static int attr_table_cb(const struct nlattr *attr, void *data)
{
	const struct attr_table *t = data;
	uint16_t type = mnl_attr_get_type(attr);
	if (type <= t->max)
		t->tb[type] = attr;
	return MNL_CB_OK;
}

/* One request on a fresh NETLINK_ROUTE socket; cb sees every reply message. */
static int rtnl_talk(struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	char buf[RTNL_BUF];
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	int r = 0;

	if (nl == NULL)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err_close;
	unsigned portid = mnl_socket_get_portid(nl);
	req->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
		goto err_close;
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			goto err_close;
		r = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, portid, cb, data);
	} while (r > MNL_CB_STOP);
	mnl_socket_close(nl);
	return r < 0 ? -errno : 0;

err_close:
	r = -errno;
	mnl_socket_close(nl);
	return r;
}

static struct nlmsghdr *link_msg(char *buf, uint16_t type, uint16_t flags, int ifindex)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return nlh;
}

int link_index(const char *ifname)
{
	unsigned idx = if_nametoindex(ifname);
	return idx == 0 || idx > INT32_MAX ? -ENODEV : (int)idx;
}

int link_create_wireguard(const char *ifname)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, info);
	return rtnl_talk(nlh, NULL, NULL);
}

struct link_state {
	uint32_t mtu;
	unsigned flags;
	char kind[16]; /* IFLA_INFO_KIND: "wireguard", "tun", ... */
};

static int link_state_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_state *st = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFLA_LINKINFO + 1] = {0};
	struct attr_table t = {tb, IFLA_LINKINFO};

	if (nlh->nlmsg_type != RTM_NEWLINK || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifi)))
		return MNL_CB_OK;
	st->flags = ifi->ifi_flags;
	if (mnl_attr_parse(nlh, sizeof(*ifi), attr_table_cb, &t) < 0)
		return MNL_CB_ERROR;
	if (tb[IFLA_MTU] && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) == 0)
		st->mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_LINKINFO] == NULL)
		return MNL_CB_OK;
	const struct nlattr *info[IFLA_INFO_KIND + 1] = {0};
	struct attr_table ti = {info, IFLA_INFO_KIND};
	if (mnl_attr_parse_nested(tb[IFLA_LINKINFO], attr_table_cb, &ti) < 0)
		return MNL_CB_ERROR;
	if (info[IFLA_INFO_KIND] && mnl_attr_validate(info[IFLA_INFO_KIND], MNL_TYPE_STRING) == 0)
		snprintf(st->kind, sizeof(st->kind), "%s", mnl_attr_get_str(info[IFLA_INFO_KIND]));
	return MNL_CB_OK;
}

/* MTU first, then up: only what differs is written, and only to a link of this kind. */
static int link_set_mtu_up(int ifindex, const char *kind, uint32_t mtu)
{
	char buf[RTNL_BUF];
	struct link_state st = {0};
	int r = rtnl_talk(link_msg(buf, RTM_GETLINK, 0, ifindex), link_state_cb, &st);
	if (r < 0)
		return r;
	if (strcmp(st.kind, kind) != 0)
		return -EMEDIUMTYPE;
	if (st.mtu == mtu && (st.flags & IFF_UP))
		return 0;
	struct nlmsghdr *nlh = link_msg(buf, RTM_NEWLINK, 0, ifindex);
	struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	if (st.mtu != mtu)
		mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return rtnl_talk(nlh, NULL, NULL);
}

#define LINK_MAX_ADDRS 64

struct addr_dump {
	int ifindex;
	struct ip_cidr addrs[LINK_MAX_ADDRS];
	size_t n;
	bool overflow;
};

static int addr_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_dump *d = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_LOCAL + 1] = {0};
	struct attr_table t = {tb, IFA_LOCAL};

	if (nlh->nlmsg_type != RTM_NEWADDR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*ifa)) ||
	    (int)ifa->ifa_index != d->ifindex)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), attr_table_cb, &t) < 0)
		return MNL_CB_ERROR;
	/* IFA_LOCAL is the interface's own address (IPv4); IPv6 has only IFA_ADDRESS. */
	const struct nlattr *attr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (attr == NULL)
		return MNL_CB_OK;
	if (d->n == LINK_MAX_ADDRS) {
		d->overflow = true;
		return MNL_CB_OK;
	}
	if (ip_cidr_from_bytes(mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr),
			       ifa->ifa_prefixlen, IP_CIDR_ALLOW_HOST_BITS, &d->addrs[d->n]) == 0)
		d->n++;
	return MNL_CB_OK;
}

static int addr_change(uint16_t type, int ifindex, const struct ip_cidr *c)
{
	char buf[RTNL_BUF];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	if (type == RTM_NEWADDR)
		nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)c->addr.family;
	ifa->ifa_prefixlen = c->prefix;
	ifa->ifa_index = (uint32_t)ifindex;
	/* A point-to-point tunnel has no neighbours to detect duplicates with. */
	ifa->ifa_flags = c->addr.family == AF_INET6 ? IFA_F_NODAD : 0;
	size_t len = ip_family_len(c->addr.family);
	mnl_attr_put(nlh, IFA_LOCAL, len, c->addr.bytes);
	mnl_attr_put(nlh, IFA_ADDRESS, len, c->addr.bytes);
	return rtnl_talk(nlh, NULL, NULL);
}

static bool cidr_same(const struct ip_cidr *a, const struct ip_cidr *b)
{
	return a->prefix == b->prefix && ip_addr_equal(&a->addr, &b->addr);
}

static bool cidr_in(const struct ip_cidr *c, const struct ip_cidr *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_same(c, &set[i]))
			return true;
	return false;
}

static bool is_link_local(const struct ip_cidr *c)
{
	return c->addr.family == AF_INET6 && c->addr.bytes[0] == 0xfe &&
	       (c->addr.bytes[1] & 0xc0) == 0x80;
}

static int link_set_addresses(int ifindex, const struct ip_cidr *want, size_t n_want)
{
	char buf[RTNL_BUF];
	struct addr_dump d = {.ifindex = ifindex};
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	int r = rtnl_talk(nlh, addr_dump_cb, &d);
	if (r < 0)
		return r;
	if (d.overflow)
		return -E2BIG;
	for (size_t i = 0; i < d.n; i++)
		if (!is_link_local(&d.addrs[i]) && !cidr_in(&d.addrs[i], want, n_want) &&
		    (r = addr_change(RTM_DELADDR, ifindex, &d.addrs[i])) < 0)
			return r;
	for (size_t i = 0; i < n_want; i++)
		if (!cidr_in(&want[i], d.addrs, d.n) &&
		    (r = addr_change(RTM_NEWADDR, ifindex, &want[i])) < 0)
			return r;
	return 0;
}

int link_configure(int ifindex, const char *kind, uint32_t mtu, const struct ip_cidr *addrs,
		   size_t n_addrs)
{
	int r = link_set_mtu_up(ifindex, kind, mtu);
	return r < 0 ? r : link_set_addresses(ifindex, addrs, n_addrs);
}

// The XDP program nfv attaches to its AF_XDP ports: work the plan placed
// below the workers runs here; everything else goes to the port's AF_XDP
// socket on the queue it arrived on, as libxdp's default program does.
//
// Per port (the `config` map, by ingress ifindex, set from the plan) it
// runs chains made wholly of complete stages (TTL decrement, MAC swap,
// cross-connect) and forwards the
// established flows the workers installed in the `flows` map (a NAT44's
// sessions, a load balancer's direct-server-return connections). Every
// decision is taken before anything is written: a packet that goes up to
// the workers goes up as it arrived.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ip_sum.h"

// What the chain does, set by nfv when it loads the program.
#define DO_TTL 1      // decrement the IPv4 TTL (expiring packets go up)
#define DO_MACSWAP 2  // swap the Ethernet addresses
#define DO_BACK 4     // send back out of the ingress port (XDP_TX)
#define DO_FLOWS 8    // forward the established flows of the `flows` map
#define DO_ACL 16     // first match in `acl_rules`: deny drops, permit goes on
// Send back out of the ingress port by redirecting to it, not XDP_TX: a
// veth delivers XDP_TX frames only to a peer with an XDP program of its
// own (it flushes to no other), redirected ones to any peer with NAPI.
#define TX_BY_REDIRECT 32
#define DO_VTEP 64    // a VXLAN VTEP's known unicast (`l2`, `vtep_conf`)
#define DO_UPF 128    // a UPF's plain sessions (`upf_up`, `upf_down`, `upf_conf`)

// What the program does on one port (by ingress ifindex): the steps
// above, and where the port's AF_XDP sockets start in `xsks` (each port
// has XSKS_PER_PORT slots, one per queue). A port without an entry is
// not nfv's: its packets go to the kernel.
struct config {
	__u32 flags;
	__u32 xsk_base;
	__u32 vni;      // a VTEP's access port: its bridge domain's VNI
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

// Cross-connect: ingress ifindex -> egress ifindex.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} patch SEC(".maps");

// An established flow as one direction's packets show it (a NAT44
// session, a load balancer's connection): addresses and ports as on the
// wire (network order), padding zero.
struct flow_key {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

// What that direction becomes: the source (side 0) or the destination
// (side 1) rewritten to `addr`:`port`, nothing rewritten (side 2: a
// direct-server-return backend), or both (side 3: the source to
// `addr`:`port`, the destination to `addr2`:`port2`, a load balancer's
// NAT mode), or put in an IP-in-IP tunnel (side 4: from `addr2` to
// `addr`, a load balancer's IP-in-IP mode); the Ethernet addresses to
// send with, the egress port;
// `last_seen` is written here for the workers' idle timers.
#define SIDE_SRC 0
#define SIDE_DST 1
#define SIDE_NONE 2
#define SIDE_BOTH 3
#define SIDE_IPIP 4   // IP-in-IP (RFC 2003) from `addr2` to `addr`
struct flow_val {
	__u32 addr;
	__u16 port;
	__u8 side;
	__u8 pad;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u32 ifindex;
	__u32 addr2;
	__u16 port2;
	__u8 pad2[2];
	__u64 last_seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

// An ACL rule as a prefix and port filter (IPv4): addresses and masks as
// on the wire, port ranges inclusive in host order (ICMP: type and code),
// protocol and TCP flags as value and mask; action 0 permit, 1 deny.
struct acl_rule {
	__u32 src, src_mask, dst, dst_mask;
	__u16 sport_lo, sport_hi, dport_lo, dport_hi;
	__u8 proto, proto_mask, flags, flags_mask;
	__u32 action;
};

#define ACL_MAX 256

// Two sets of rules: a new rule set is written into the one not in use,
// then `acl_conf` switches to it in one 32-bit store, so a packet never
// meets half of each.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * ACL_MAX);
	__type(key, __u32);
	__type(value, struct acl_rule);
} acl_rules SEC(".maps");

// The rule set in use, in one word: the rule count (bits 0-15), which set
// (bit 16: the second), the default action (bit 17: deny) and the action
// for frames not IP (bit 18: deny); bit 19: a rule set the filter cannot
// hold is in force, every packet goes up to the workers' ACL.
#define ACL_COUNT(c) ((c) & 0xffff)
#define ACL_SECOND (1 << 16)
#define ACL_DEFAULT_DENY (1 << 17)
#define ACL_NON_IP_DENY (1 << 18)
#define ACL_UP (1 << 19)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} acl_conf SEC(".maps");

// A VXLAN VTEP over IPv4 (RFC 7348): its forwarding database as the
// workers installed it, by (VNI, MAC): a local port, or a remote VTEP
// with the next hop's Ethernet address toward it; `last_seen` feeds the
// workers' ageing.
struct l2_key {
	__u32 vni;
	__u8 mac[ETH_ALEN];
	__u8 pad[2];
};

struct l2_val {
	__u32 ifindex;      // local port, or 0
	__u32 remote;       // remote VTEP (network order), or 0
	__u8 hop_mac[ETH_ALEN];
	__u8 pad[2];
	__u64 last_seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l2_key);
	__type(value, struct l2_val);
} l2 SEC(".maps");

// The VTEP itself: its address and underlay port, what its outer headers
// carry.
struct vtep_conf {
	__u32 local_ip;          // network order
	__u32 underlay;          // ifindex
	__u8 underlay_mac[ETH_ALEN];
	__u16 dport;             // host order
	__u16 sport_lo, sport_hi;
	__u16 mtu;
	__u8 ttl;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vtep_conf);
} vtep_conf SEC(".maps");

// The AF_XDP sockets, by port and queue (config.xsk_base + queue).
#define XSKS_PER_PORT 64
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 16 * XSKS_PER_PORT);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// Packets decided here, per CPU: [0] forwarded, [1] sent up.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &i);
	if (n)
		*n += 1;
}

// To the workers: the port's socket on the queue it arrived on (no
// socket there: the kernel's stack, as libxdp's program does).
static __always_inline int up(struct xdp_md *ctx, const struct config *cfg)
{
	count(1);
	if (ctx->rx_queue_index >= XSKS_PER_PORT)
		return XDP_PASS;
	return bpf_redirect_map(&xsks, cfg->xsk_base + ctx->rx_queue_index, XDP_PASS);
}

// Back out of the ingress port `in`.
static __always_inline int back(const struct config *cfg, __u32 in)
{
	return (cfg->flags & TX_BY_REDIRECT) ? bpf_redirect(in, 0) : XDP_TX;
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for the 16-bit word holding
// the TTL (TTL in its high octet).
static __always_inline void ttl_decrement(struct iphdr *ip)
{
	__u32 sum = (__u16)~bpf_ntohs(ip->check);
	__u16 old = (__u16)(ip->ttl << 8 | ip->protocol);
	ip->ttl -= 1;
	__u16 new = (__u16)(ip->ttl << 8 | ip->protocol);
	sum += (__u16)~old;
	sum += new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = bpf_htons((__u16)~sum);
}

// RFC 1624 eqn. 3 terms: ~m + m' for a 16-bit word, and for two.
static __always_inline __u32 delta16(__u16 old, __u16 new)
{
	return (__u16)~old + (__u32)new;
}

static __always_inline __u32 delta32(__u32 old, __u32 new)
{
	return delta16(old >> 16, new >> 16) + delta16(old & 0xffff, new & 0xffff);
}

// HC' = ~(~HC + delta), folded (checksums in network order).
static __always_inline __u16 adjust(__u16 csum_be, __u32 delta)
{
	__u32 sum = (__u16)~bpf_ntohs(csum_be) + delta;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return bpf_htons((__u16)~sum);
}

// TCP and UDP: the ports at the L4 header's start, the checksum at
// `csum_at` (16 TCP, 6 UDP: 0 there means none, and a computed 0 goes as
// 0xffff, RFC 768), both covering the addresses (pseudo-header). One end
// (`dst` false: the source) becomes `addr`:`port` (network order).
static __always_inline int rewrite_end(struct iphdr *ip, void *l4, void *end, int dst, __u32 addr, __u16 port_be, __u8 proto)
{
	__u32 *a = dst ? &ip->daddr : &ip->saddr;
	__u16 *port = (__u16 *)l4 + (dst ? 1 : 0);
	__u16 *csum = proto == IPPROTO_TCP ? (__u16 *)(l4 + 16) : (__u16 *)(l4 + 6);
	if ((void *)(csum + 1) > end)
		return -1;
	__u32 old_a = bpf_ntohl(*a), new_a = bpf_ntohl(addr);
	__u32 da = delta32(old_a, new_a);
	ip->check = adjust(ip->check, da);
	__u32 d = da + delta16(bpf_ntohs(*port), bpf_ntohs(port_be));
	*a = addr;
	*port = port_be;
	if (proto == IPPROTO_UDP && *csum == 0)
		return 0;
	__u16 c = adjust(*csum, d);
	*csum = (proto == IPPROTO_UDP && c == 0) ? 0xffff : c;
	return 0;
}

// The flow's rewrite (not SIDE_NONE).
static __always_inline int rewrite(struct iphdr *ip, void *l4, void *end, const struct flow_val *v, __u8 proto)
{
	if (v->side == SIDE_BOTH) {
		if (rewrite_end(ip, l4, end, 0, v->addr, v->port, proto) < 0)
			return -1;
		return rewrite_end(ip, l4, end, 1, v->addr2, v->port2, proto);
	}
	return rewrite_end(ip, l4, end, v->side == SIDE_DST, v->addr, v->port, proto);
}

struct acl_pkt {
	__u32 src, dst;
	__u16 sport, dport;
	__u8 proto, flags;
};

struct acl_walk {
	const struct acl_pkt *p;
	__u32 count, base;
	int action;
};

static long acl_match(__u32 i, struct acl_walk *w)
{
	if (i >= w->count)
		return 1;
	__u32 at = w->base + i;
	struct acl_rule *r = bpf_map_lookup_elem(&acl_rules, &at);
	if (!r)
		return 1;
	const struct acl_pkt *p = w->p;
	if ((p->src & r->src_mask) != r->src || (p->dst & r->dst_mask) != r->dst)
		return 0;
	if ((p->proto & r->proto_mask) != r->proto || (p->flags & r->flags_mask) != r->flags)
		return 0;
	if (p->sport < r->sport_lo || p->sport > r->sport_hi || p->dport < r->dport_lo || p->dport > r->dport_hi)
		return 0;
	w->action = r->action;
	return 1;
}

// The ACL's verdict for the IPv4 packet at `ip` (header without options):
// 0 permit, 1 deny; its L4 fields as the software stage reads them (ports,
// or ICMP type and code; TCP flags; zero for a later fragment).
static __always_inline int acl_verdict(struct iphdr *ip, void *end, __u32 c)
{
	struct acl_pkt p = { .src = ip->saddr, .dst = ip->daddr, .proto = ip->protocol };
	__u8 *l4 = (void *)(ip + 1);
	if (!(ip->frag_off & bpf_htons(0x1fff)) && (void *)(l4 + 4) <= end) {
		switch (ip->protocol) {
		case IPPROTO_TCP:
			if ((void *)(l4 + 14) <= end)
				p.flags = l4[13];
			/* fallthrough */
		case IPPROTO_UDP:
		case IPPROTO_SCTP:
			p.sport = (__u16)l4[0] << 8 | l4[1];
			p.dport = (__u16)l4[2] << 8 | l4[3];
			break;
		case IPPROTO_ICMP:
			p.sport = l4[0];
			p.dport = l4[1];
			break;
		}
	}
	struct acl_walk w = {
		.p = &p,
		.count = ACL_COUNT(c),
		.base = (c & ACL_SECOND) ? ACL_MAX : 0,
		.action = !!(c & ACL_DEFAULT_DENY),
	};
	bpf_loop(ACL_MAX, acl_match, &w, 0);
	return w.action;
}


// ---- VXLAN VTEP known unicast (RFC 7348) ----

#define VXLAN_HLEN 50 // outer Ethernet 14, IPv4 20, UDP 8, VXLAN 8
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88a8

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline struct l2_val *l2_find(__u32 vni, const __u8 *mac)
{
	struct l2_key k = { .vni = vni };
	__builtin_memcpy(k.mac, mac, ETH_ALEN);
	return bpf_map_lookup_elem(&l2, &k);
}

// A tunnel packet from the underlay to a MAC behind a local port, from a
// MAC the FDB has at the sending VTEP (so nothing is learned or moves):
// the inner frame leaves by that port as it was. Anything else (Geneve,
// IPv6, options, fragments, a UDP checksum to verify, trailing bytes,
// group or unknown MACs, an inner VLAN) goes up. Returns a verdict, or -1
// for up (nothing written).
static __always_inline int vtep_decap(struct xdp_md *ctx, const struct vtep_conf *vc)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *vx = (void *)(udp + 1);
	struct ethhdr *inner = (void *)(vx + 8);
	if ((void *)(inner + 1) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x3fff)) || ip->protocol != IPPROTO_UDP || ip->daddr != vc->local_ip)
		return -1;
	if (ip_sum(ip) != 0xffff)
		return -1;
	__u16 ip_len = bpf_ntohs(ip->tot_len);
	if ((void *)ip + ip_len != end || bpf_ntohs(udp->len) != ip_len - sizeof(*ip))
		return -1;
	// RFC 7348 section 5: the I flag set; the checksum 0 over IPv4.
	if (udp->dest != bpf_htons(vc->dport) || udp->check != 0 || !(vx[0] & 0x08))
		return -1;
	__u32 vni = (__u32)vx[4] << 16 | (__u32)vx[5] << 8 | vx[6];
	if ((inner->h_dest[0] & 1) || inner->h_proto == bpf_htons(ETH_P_8021Q_) ||
	    inner->h_proto == bpf_htons(ETH_P_8021AD_))
		return -1;
	struct l2_val *from = l2_find(vni, inner->h_source);
	if (!from || from->remote != ip->saddr || !mac_eq(from->hop_mac, eth->h_source))
		return -1;
	struct l2_val *to = l2_find(vni, inner->h_dest);
	if (!to || !to->ifindex)
		return -1;
	__u32 out = to->ifindex;
	if (bpf_xdp_adjust_head(ctx, VXLAN_HLEN))
		return -1;
	__u64 now = bpf_ktime_get_coarse_ns();
	from->last_seen = now;
	to->last_seen = now;
	count(0);
	return bpf_redirect(out, 0);
}

// A frame from access port `in` (VNI `vni`) to a MAC the FDB has, from a
// MAC the FDB has at this port: switched to another local port as it is,
// or encapsulated toward the remote VTEP with the headers the workers
// would write (RFC 7348 section 5: the UDP source port from a hash of the
// inner flow, checksum 0; DF, never fragmented). Only IPv4 TCP and UDP
// inner packets without options or fragments (the hash reads their ports);
// the rest goes up. Returns a verdict, or -1 for up (nothing written).
static __always_inline int vtep_encap(struct xdp_md *ctx, const struct vtep_conf *vc, __u32 vni, __u32 in)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *l4 = (void *)(ip + 1);
	if ((void *)(l4 + 20) > end)
		return -1;
	if ((eth->h_dest[0] & 1) || eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return -1;
	__u16 ip_len = bpf_ntohs(ip->tot_len);
	if (ip->protocol == IPPROTO_UDP) {
		if (ip_len < 28)
			return -1;
	} else if (ip->protocol != IPPROTO_TCP || ip_len < 40) {
		return -1;
	}
	if ((void *)ip + ip_len > end)
		return -1;
	struct l2_val *from = l2_find(vni, eth->h_source);
	if (!from || from->ifindex != in)
		return -1;
	struct l2_val *to = l2_find(vni, eth->h_dest);
	if (!to)
		return -1;
	__u64 now = bpf_ktime_get_coarse_ns();
	if (to->ifindex) {
		if (to->ifindex == in)
			return -1;
		from->last_seen = now;
		to->last_seen = now;
		count(0);
		return bpf_redirect(to->ifindex, 0);
	}
	__u32 inner_len = end - data;
	__u32 outer_len = inner_len + VXLAN_HLEN - sizeof(struct ethhdr);
	if (outer_len > vc->mtu)
		return -1;
	// The workers' entropy: source and destination addresses, the ports'
	// word xor the protocol.
	__u32 a = bpf_ntohl(ip->saddr), b = bpf_ntohl(ip->daddr);
	__u32 c = ((__u32)l4[0] << 24 | (__u32)l4[1] << 16 | (__u32)l4[2] << 8 | l4[3]) ^ ip->protocol;
	__u32 h = (a * 0x9e3779b1u ^ (b << 16 | b >> 16) ^ c) * 0x85ebca6bu;
	h ^= h >> 15;
	__u16 lo = vc->sport_lo, hi = vc->sport_hi;
	__u16 sport = lo + (__u16)(((__u64)h * (__u64)(hi - lo) + h) >> 32);
	__u32 remote = to->remote;
	__u8 hop[ETH_ALEN];
	__builtin_memcpy(hop, to->hop_mac, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, -VXLAN_HLEN))
		return -1;
	from->last_seen = now;
	to->last_seen = now;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *oeth = data;
	struct iphdr *oip = (void *)(oeth + 1);
	struct udphdr *oudp = (void *)(oip + 1);
	__u8 *ovx = (void *)(oudp + 1);
	if ((void *)(ovx + 8) > end)
		return XDP_ABORTED;
	__builtin_memcpy(oeth->h_dest, hop, ETH_ALEN);
	__builtin_memcpy(oeth->h_source, vc->underlay_mac, ETH_ALEN);
	oeth->h_proto = bpf_htons(ETH_P_IP);
	oip->version = 4;
	oip->ihl = 5;
	oip->tos = 0;
	oip->tot_len = bpf_htons(outer_len);
	oip->id = 0;
	oip->frag_off = bpf_htons(0x4000);
	oip->ttl = vc->ttl;
	oip->protocol = IPPROTO_UDP;
	oip->check = 0;
	oip->saddr = vc->local_ip;
	oip->daddr = remote;
	oip->check = ~ip_sum(oip);
	oudp->source = bpf_htons(sport);
	oudp->dest = bpf_htons(vc->dport);
	oudp->len = bpf_htons(outer_len - sizeof(struct iphdr));
	oudp->check = 0;
	ovx[0] = 0x08;
	ovx[1] = ovx[2] = ovx[3] = 0;
	ovx[4] = vni >> 16;
	ovx[5] = vni >> 8;
	ovx[6] = vni;
	ovx[7] = 0;
	count(0);
	return bpf_redirect(vc->underlay, 0);
}

// An IP-in-IP tunnel in front of the IPv4 packet (RFC 2003 section 3.1:
// TTL 64, protocol 4, the inner TOS and DF copied, identification 0 as
// the workers write it; the outer length covers the frame as it came),
// sent to the flow's backend.
static __always_inline int ipip(struct xdp_md *ctx, const struct config *cfg, struct flow_val *fv, __u32 in)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *inner = data + sizeof(struct ethhdr);
	if ((void *)(inner + 1) > end)
		return up(ctx, cfg);
	__u8 tos = inner->tos;
	__u16 df = inner->frag_off & bpf_htons(0x4000);
	__u32 len = end - data;
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return up(ctx, cfg);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, fv->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fv->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(len - sizeof(struct ethhdr) + sizeof(struct iphdr));
	ip->id = 0;
	ip->frag_off = df;
	ip->ttl = 64;
	ip->protocol = IPPROTO_IPIP;
	ip->check = 0;
	ip->saddr = fv->addr2;
	ip->daddr = fv->addr;
	ip->check = ~ip_sum(ip);
	fv->last_seen = bpf_ktime_get_coarse_ns();
	count(0);
	return fv->ifindex == in ? back(cfg, in) : bpf_redirect(fv->ifindex, 0);
}

#include "upf.h"

SEC("xdp")
int nfv_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0, in = ctx->ingress_ifindex;
	struct config *cfg = bpf_map_lookup_elem(&config, &in);
	if (!cfg)
		return XDP_PASS;
	if (!cfg->flags)
		return up(ctx, cfg);
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return up(ctx, cfg);
	struct iphdr *ip = (void *)(eth + 1);
	// An IPv4 header without options, whole. (Every use below checks the
	// bounds again where the verifier needs to see it.)
	int v4 = eth->h_proto == bpf_htons(ETH_P_IP) && (void *)(ip + 1) <= end && ip->ihl == 5;
	// Decide: every check before any write.
	if (cfg->flags & DO_ACL) {
		__u32 *cp = bpf_map_lookup_elem(&acl_conf, &zero);
		if (!cp)
			return up(ctx, cfg);
		__u32 c = *cp;
		if (c & ACL_UP)
			return up(ctx, cfg);
		int ipv4 = eth->h_proto == bpf_htons(ETH_P_IP);
		if (!ipv4 && eth->h_proto != bpf_htons(ETH_P_IPV6)) {
			if (c & ACL_NON_IP_DENY) {
				count(0);
				return XDP_DROP;
			}
		} else if (!v4 || (void *)(ip + 1) > end) {
			return up(ctx, cfg);
		} else if (acl_verdict(ip, end, c)) {
			count(0);
			return XDP_DROP;
		}
	}
	if (cfg->flags & DO_VTEP) {
		struct vtep_conf *vc = bpf_map_lookup_elem(&vtep_conf, &zero);
		int r = -1;
		if (vc && in == vc->underlay)
			r = vtep_decap(ctx, vc);
		else if (vc && cfg->vni)
			r = vtep_encap(ctx, vc, cfg->vni, in);
		return r < 0 ? up(ctx, cfg) : r;
	}
	if (cfg->flags & DO_UPF) {
		struct upf_conf *uc = bpf_map_lookup_elem(&upf_conf, &zero);
		int r = -1;
		if (uc && in == uc->n3_ifindex)
			r = upf_uplink(ctx, cfg, uc, in);
		else if (uc && uc->n3_ifindex)
			r = upf_downlink(ctx, cfg, in);
		return r < 0 ? up(ctx, cfg) : r;
	}
	if (cfg->flags & DO_TTL) {
		if (!v4 || (void *)(ip + 1) > end || ip->ttl <= 1)
			return up(ctx, cfg);
	}
	struct flow_val *fv = 0;
	void *l4 = (void *)(ip + 1);
	if (cfg->flags & DO_FLOWS) {
		// Not first fragments, options, other protocols, or TCP state
		// changes (SYN, FIN, RST): the workers' (RFC 7857 states).
		if (!v4 || (void *)(ip + 1) > end || (ip->frag_off & bpf_htons(0x3fff)))
			return up(ctx, cfg);
		if (ip->protocol == IPPROTO_TCP) {
			struct tcphdr_flags { __u8 b[14]; } *t = l4;
			if ((void *)(t + 1) > end || (t->b[13] & 0x07))
				return up(ctx, cfg);
		} else if (ip->protocol != IPPROTO_UDP) {
			return up(ctx, cfg);
		}
		__u16 *ports = l4;
		if ((void *)(ports + 2) > end)
			return up(ctx, cfg);
		struct flow_key k = { .src = ip->saddr, .dst = ip->daddr, .sport = ports[0], .dport = ports[1], .proto = ip->protocol };
		fv = bpf_map_lookup_elem(&flows, &k);
		if (!fv)
			return up(ctx, cfg);
		// The checksum a rewrite adjusts must be in the frame.
		if (fv->side != SIDE_NONE && fv->side != SIDE_IPIP && l4 + (ip->protocol == IPPROTO_TCP ? 18 : 8) > end)
			return up(ctx, cfg);
	}
	// The way out: a flow's, back, or the cross-connect. Without one the
	// workers decide, and the packet goes up as it came.
	__u32 *patched = 0;
	if (!fv && !(cfg->flags & DO_BACK)) {
		patched = bpf_map_lookup_elem(&patch, &in);
		if (!patched)
			return up(ctx, cfg);
	}
	// Act.
	if (cfg->flags & DO_TTL) {
		if ((void *)(ip + 1) > end)
			return up(ctx, cfg);
		ttl_decrement(ip);
	}
	if (fv && fv->side == SIDE_IPIP)
		return ipip(ctx, cfg, fv, in);
	if (fv) {
		if (fv->side != SIDE_NONE && rewrite(ip, l4, end, fv, ip->protocol) < 0)
			return up(ctx, cfg);
		__builtin_memcpy(eth->h_dest, fv->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fv->smac, ETH_ALEN);
		fv->last_seen = bpf_ktime_get_coarse_ns();
		count(0);
		return fv->ifindex == in ? back(cfg, in) : bpf_redirect(fv->ifindex, 0);
	}
	if (cfg->flags & DO_MACSWAP) {
		__u8 tmp[ETH_ALEN];
		__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	}
	count(0);
	if (patched)
		return bpf_redirect(*patched, 0);
	return back(cfg, in);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// A 5G UPF's plain sessions in nfv's XDP program (included by
// nfv.bpf.c after its shared helpers: count, up, back, struct config):
// the maps the workers fill and the uplink and downlink paths.
#ifndef NFV_UPF_H
#define NFV_UPF_H

// A 5G UPF (GTP-U over IPv4, TS 29.281): the port G-PDUs come in by
// (N3; every other port of the chain is N6) and our N3 address.
struct upf_conf {
	__u32 n3_addr;     // network order
	__u32 n3_ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct upf_conf);
} upf_conf SEC(".maps");

// A session's uplink by TEID (as on the wire), as the workers installed
// it: the inner source its PDR requires (0: any), its URR's counter
// slot, the way to N6.
struct upf_up {
	__u32 ue;
	__u32 urr;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct upf_up);
} upf_up SEC(".maps");

// A session's downlink by UE address (as on the wire): the outer
// Ethernet, IPv4 and UDP headers the workers write (lengths and checksum
// set here), the gNB's TEID, the QFI of the PDU Session Container (0xff:
// none), the URR's slot, the N3 port.
#define GTPU_OUTER 42
struct upf_down {
	__u8 outer[GTPU_OUTER];
	__u8 qfi;
	__u8 pad;
	__u32 teid;
	__u32 urr;
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u32);
	__type(value, struct upf_down);
} upf_down SEC(".maps");

// URR counts by slot (TS 29.244 8.2.40: T-PDU octets, outer headers not
// counted), added to the workers' own by the N4 side's reports. One
// array for every CPU (atomic adds): a per-CPU one would take its size
// times the CPUs.
struct upf_usage {
	__u64 ul_bytes, ul_packets, dl_bytes, dl_packets;
};

#define USAGE_SLOTS 131072
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, USAGE_SLOTS);
	__type(key, __u32);
	__type(value, struct upf_usage);
} upf_usage SEC(".maps");

// ---- UPF plain sessions (TS 29.281, TS 29.244) ----

#define GTPU_PORT 2152

static __always_inline void usage_add(__u32 slot, int down, __u64 bytes)
{
	struct upf_usage *u = bpf_map_lookup_elem(&upf_usage, &slot);
	if (!u)
		return;
	if (down) {
		__sync_fetch_and_add(&u->dl_bytes, bytes);
		__sync_fetch_and_add(&u->dl_packets, 1);
	} else {
		__sync_fetch_and_add(&u->ul_bytes, bytes);
		__sync_fetch_and_add(&u->ul_packets, 1);
	}
}

// A G-PDU from N3 to our address (TS 29.281 5.1: version 1, PT 1; the
// optional fields and at most one extension header, a PDU Session
// Container, TS 38.415 5.5.2) of a session the workers installed, its
// inner packet IPv4 from the UE's address: the outer headers cut, the
// inner packet without what follows it (the GTP-U length says where it
// ends) sent to N6. Anything else (other messages, other extensions, IPv6,
// options, fragments, a UE source that does not match) goes up. Returns a
// verdict, or -1 for up (nothing written).
static __always_inline int upf_uplink(struct xdp_md *ctx, const struct config *cfg, const struct upf_conf *uc, __u32 in)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *g = (void *)(udp + 1);
	if ((void *)(g + 16) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x3fff)) || ip->protocol != IPPROTO_UDP || ip->daddr != uc->n3_addr)
		return -1;
	__u32 ip_len = bpf_ntohs(ip->tot_len);
	if (ip_len < 28 || ip_len > (__u32)(end - (void *)ip) || udp->dest != bpf_htons(GTPU_PORT))
		return -1;
	__u8 f = g[0];
	if ((f >> 5) != 1 || !(f & 0x10) || g[1] != 0xff)
		return -1;
	// The length covers what follows the first 8 octets (5.1), to the
	// end of the frame at most.
	__u32 length = (__u32)g[2] << 8 | g[3];
	__u32 avail = end - (void *)g;
	if (8 + length > avail)
		return -1;
	__u32 hl = 8;
	if (f & 0x07) {
		if (length < 4)
			return -1;
		hl = 12;
		if (f & 0x04) {
			if (g[11] == 0x85 && g[12] == 1 && g[15] == 0 && length >= 8)
				hl = 16;
			else if (g[11] != 0)
				return -1;
		}
	}
	__u32 payload = 8 + length - hl;
	if (payload < 20 || hl + payload > avail)
		return -1;
	__u8 *inner = g + (hl & 0x1c);
	if ((void *)(inner + 20) > end || (inner[0] >> 4) != 4)
		return -1;
	__u32 teid = *(__u32 *)(g + 4);
	struct upf_up *s = bpf_map_lookup_elem(&upf_up, &teid);
	if (!s || (s->ue && *(__u32 *)(inner + 12) != s->ue))
		return -1;
	// Act: the frame becomes the inner packet behind a new Ethernet
	// header.
	__u32 tail = avail - hl - payload;
	if (tail && bpf_xdp_adjust_tail(ctx, -(int)tail))
		return -1;
	if (bpf_xdp_adjust_head(ctx, (int)(sizeof(struct iphdr) + sizeof(struct udphdr) + (hl & 0x1c))))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	__builtin_memcpy(eth->h_dest, s->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, s->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	usage_add(s->urr, 0, payload);
	count(0);
	return s->ifindex == in ? back(cfg, in) : bpf_redirect(s->ifindex, 0);
}

// An IPv4 packet from N6 to a UE of a session the workers installed:
// without the padding of a short frame, put in the gNB's tunnel with the
// outer headers the workers wrote and a G-PDU header (5.1; a PDU Session
// Container with the QFI, TS 38.415 5.5.2.1), sent to N3. Returns a
// verdict, or -1 for up (nothing written).
static __always_inline int upf_downlink(struct xdp_md *ctx, const struct config *cfg, __u32 in)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4 || ip->ihl < 5)
		return -1;
	__u32 len = bpf_ntohs(ip->tot_len);
	__u32 avail = end - (void *)ip;
	if (len < (__u32)ip->ihl * 4 || len > avail)
		return -1;
	__u32 ue = ip->daddr;
	struct upf_down *s = bpf_map_lookup_elem(&upf_down, &ue);
	if (!s)
		return -1;
	int psc = s->qfi != 0xff;
	__u32 gl = psc ? 16 : 8;
	if (avail > len && bpf_xdp_adjust_tail(ctx, -(int)(avail - len)))
		return -1;
	if (bpf_xdp_adjust_head(ctx, -(int)(GTPU_OUTER - sizeof(struct ethhdr) + gl)))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	__u8 *h = data;
	if ((void *)(h + GTPU_OUTER + 16) > end)
		return XDP_ABORTED;
	__builtin_memcpy(h, s->outer, GTPU_OUTER);
	struct iphdr *oip = (void *)(h + sizeof(struct ethhdr));
	struct udphdr *oudp = (void *)(oip + 1);
	__u32 ip_len = sizeof(struct iphdr) + sizeof(struct udphdr) + gl + len;
	oip->tot_len = bpf_htons(ip_len);
	oip->check = 0;
	oip->check = ~ip_sum(oip);
	oudp->len = bpf_htons(ip_len - sizeof(struct iphdr));
	__u8 *g = h + GTPU_OUTER;
	__u32 glen = len + gl - 8;
	g[0] = psc ? 0x34 : 0x30;
	g[1] = 0xff;
	g[2] = glen >> 8;
	g[3] = glen;
	__builtin_memcpy(g + 4, &s->teid, 4);
	if (psc) {
		g[8] = g[9] = g[10] = 0;
		g[11] = 0x85;
		g[12] = 1;
		g[13] = 0; // PDU type 0: DL PDU SESSION INFORMATION
		g[14] = s->qfi & 0x3f;
		g[15] = 0;
	}
	usage_add(s->urr, 1, len);
	count(0);
	return s->ifindex == in ? back(cfg, in) : bpf_redirect(s->ifindex, 0);
}

#endif

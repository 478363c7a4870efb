// nfv's XDP traffic generator: run by BPF_PROG_TEST_RUN in live-frames
// mode (BPF_F_TEST_XDP_LIVE_FRAMES, as the kernel's xdp-trafficgen does),
// each run of it sends the template frame out of one interface with the
// next flow's addresses: the source port counts from 1024 through `ports`
// values, the low 16 bits of the source address from 1 through `addrs`
// values (UDP over IPv4 without options, UDP checksum 0: RFC 768 allows
// none). A frame carrying a tunnel (a GTP-U G-PDU) has its first
// HEAD_LONG octets written again instead: its tunnel header too, which a
// device under test decapsulating in place writes over.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ip_sum.h"

#define HEAD 42
#define HEAD_LONG 64

struct gen_conf {
	__u32 ifindex;
	__u32 ports;   // source ports used: 1024 .. 1024 + ports - 1
	__u32 addrs;   // source addresses used: low 16 bits 1 .. addrs
	__u32 long_head; // write HEAD_LONG octets again, not HEAD
	// The frame's headers (Ethernet, IPv4 without options, UDP, and a
	// tunnel header after them): written again before each send, since a
	// device under test rewrites frames in place (TTL, NAT, decapsulation)
	// and the pool's pages come back as it left them.
	__u8 head[HEAD_LONG];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_conf);
} gen_conf SEC(".maps");

// Frames sent so far by this run (one CPU runs it).
__u64 sent = 0;

SEC("xdp")
int nfv_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_conf *c = bpf_map_lookup_elem(&gen_conf, &zero);
	if (!c || data + HEAD > end || !c->ports || !c->addrs)
		return XDP_ABORTED;
	if (c->long_head) {
		if (data + HEAD_LONG > end)
			return XDP_ABORTED;
		__builtin_memcpy(data, c->head, HEAD_LONG);
	} else {
		__builtin_memcpy(data, c->head, HEAD);
	}
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u64 n = sent++;
	udp->source = bpf_htons(1024 + n % c->ports);
	__u32 a = bpf_ntohl(ip->saddr);
	ip->saddr = bpf_htonl((a & 0xffff0000) | (__u16)((n / c->ports) % c->addrs + 1));
	// RFC 791 header checksum, from scratch.
	ip->check = 0;
	ip->check = ~ip_sum(ip);
	return bpf_redirect(c->ifindex, 0);
}

// The sink beside it: drops everything at the earliest point, so that
// what a device under test forwards is counted (the interface's rx
// counters) without the receiving stack setting the rate.
SEC("xdp")
int nfv_sink(struct xdp_md *ctx)
{
	return XDP_DROP;
}

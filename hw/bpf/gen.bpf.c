// nfv's XDP traffic generator: run by BPF_PROG_TEST_RUN in live-frames
// mode (BPF_F_TEST_XDP_LIVE_FRAMES, as the kernel's xdp-trafficgen does),
// each run of it sends the template frame out of one interface with the
// next flow's addresses (UDP over IPv4 without options, UDP checksum 0:
// RFC 768 allows none). A frame carrying a tunnel (a GTP-U G-PDU) has its
// first HEAD_LONG octets written again instead: its tunnel header too,
// which a device under test decapsulating in place writes over.
//
// Two ways to vary the flows. Blasting (`nfv hw blast`): the source port
// counts from 1024 through `ports` values, the low 16 bits of the source
// address from 1 through `addrs` values. Measuring (`nfv bench`,
// `flows` > 0): packet n belongs to flow n % flows, whose ports come
// from the `gen_flows` table (RFC 4814 4.5: pseudo-random, written by
// user space), and carries the bench stamp at `stamp_off`: a magic, the
// flow, its sequence number (n / flows) and the send time
// (bpf_ktime_get_ns, CLOCK_MONOTONIC: the receiver below reads the same
// clock). Frame sizes may follow a mix (`sizes`, n % n_sizes).
//
// nfv_bench_rx is the measuring end: on the interface the device under
// test sends to, it finds the stamp at one of a few offsets (the DUT may
// have added or removed a tunnel), counts the frame and hands (flow,
// sequence, latency) to user space through a ring buffer; then drops it.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "ip_sum.h"

#define HEAD 42
#define HEAD_LONG 64
#define SIZES_MAX 64
#define FLOWS_MAX 65536
#define STAMP_LEN 16
#define STAMP_MAGIC 0x666e // "nf", as nfv-bench's traffic::Stamp
#define RX_OFFSETS 4

struct gen_conf {
	__u32 ifindex;
	__u32 ports;   // blasting: source ports 1024 .. 1024 + ports - 1
	__u32 addrs;   // blasting: source addresses' low 16 bits 1 .. addrs
	__u32 long_head; // write HEAD_LONG octets again, not HEAD
	// The frame's headers (Ethernet, IPv4 without options, UDP, and a
	// tunnel header after them): written again before each send, since a
	// device under test rewrites frames in place (TTL, NAT, decapsulation)
	// and the pool's pages come back as it left them.
	__u8 head[HEAD_LONG];
	__u32 flows;     // measuring: flows in gen_flows (0: blasting)
	__u32 stamp_off; // where the stamp goes (the innermost UDP payload)
	__u32 vary_dport; // the flow's destination port too, not the template's
	__u32 n_sizes;   // frame lengths (without FCS) to cycle through, 0: the template's
	__u16 sizes[SIZES_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_conf);
} gen_conf SEC(".maps");

struct flow_ports {
	__u16 sport; // network order
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FLOWS_MAX);
	__type(key, __u32);
	__type(value, struct flow_ports);
} gen_flows SEC(".maps");

// A measuring run's pacing and count, set by user space before each
// trial (one CPU runs the generator at a time: the thread calling
// BPF_PROG_TEST_RUN). Frame n is due at start_ns + n * interval_ps / 1000;
// a run of the program before that sends nothing (XDP_DROP recycles the
// frame), so one long call paces itself to the nanosecond clock and user
// space ends it with a signal. A generator that falls behind (a device
// under test's receive work runs inline on a veth) sends what is due back
// to back: its offered rate, (sent - 1) / (last_ns - start_ns), shows it.
struct gen_state {
	__u64 sent;
	__u64 start_ns; // the first frame's time (0: the next run sets it)
	__u64 last_ns;  // the last frame's
	__u64 interval_ps;
	__u64 total;    // frames to send
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_state SEC(".maps");

// Frames sent so far by a blasting run.
__u64 sent = 0;

// 16 octets: a 64-octet frame has 18 after its UDP header.
struct stamp {
	__u16 magic;
	__u16 flow;
	__u32 seq;
	__u64 sent_ns;
} __attribute__((packed));

// The IPv4 and UDP lengths of a frame of `len` octets (and a G-PDU's,
// TS 29.281 5.1: the octets after the mandatory header, and its inner
// packet's), after the template's head was written over them.
static __always_inline int write_lengths(void *data, void *end, __u32 len, int long_head)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return -1;
	ip->tot_len = bpf_htons(len - sizeof(struct ethhdr));
	udp->len = bpf_htons(len - HEAD + sizeof(struct udphdr));
	if (long_head) {
		__u8 *g = (void *)(udp + 1);
		struct iphdr *in = (void *)(g + 8);
		struct udphdr *inu = (void *)(in + 1);
		if ((void *)(inu + 1) > end)
			return -1;
		*(__u16 *)(g + 2) = bpf_htons(len - HEAD - 8);
		in->tot_len = bpf_htons(len - HEAD - 8);
		inu->len = bpf_htons(len - HEAD - 8 - sizeof(struct iphdr));
		in->check = 0;
		in->check = ~ip_sum(in);
	}
	return 0;
}

SEC("xdp")
int nfv_gen(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct gen_conf *c = bpf_map_lookup_elem(&gen_conf, &zero);
	if (!c || !c->ports || !c->addrs)
		return XDP_ABORTED;
	__u64 n = sent;
	struct gen_state *st = 0;
	__u64 now = 0;
	__u32 len = 0;
	if (c->flows) {
		st = bpf_map_lookup_elem(&gen_state, &zero);
		if (!st)
			return XDP_ABORTED;
		n = st->sent;
		now = bpf_ktime_get_ns();
		if (!st->start_ns)
			st->start_ns = now;
		if (n >= st->total || now < st->start_ns + n * st->interval_ps / 1000)
			return XDP_DROP;
		if (c->n_sizes) {
			__u32 i = n % c->n_sizes;
			if (i >= SIZES_MAX)
				return XDP_ABORTED;
			len = c->sizes[i];
			int now = bpf_xdp_get_buff_len(ctx);
			if (bpf_xdp_adjust_tail(ctx, (int)len - now))
				return XDP_ABORTED;
		}
	}
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + HEAD > end)
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
	if (st) {
		if (len && write_lengths(data, end, len, c->long_head))
			return XDP_ABORTED;
		__u32 flow = n % c->flows;
		struct flow_ports *fp = bpf_map_lookup_elem(&gen_flows, &flow);
		if (!fp)
			return XDP_ABORTED;
		struct udphdr *fu = udp;
		if (c->long_head) {
			// The flow is the inner packet's (the UE's).
			fu = data + HEAD + 8 + sizeof(struct iphdr);
			if ((void *)(fu + 1) > end)
				return XDP_ABORTED;
		}
		fu->source = fp->sport;
		if (c->vary_dport)
			fu->dest = fp->dport;
		__u32 off = c->stamp_off;
		if (off > 256)
			return XDP_ABORTED;
		struct stamp *s = data + off;
		if ((void *)(s + 1) > end)
			return XDP_ABORTED;
		s->magic = STAMP_MAGIC;
		s->flow = flow;
		s->seq = n / c->flows;
		s->sent_ns = now;
		st->sent = n + 1;
		st->last_ns = now;
	} else {
		sent++;
		udp->source = bpf_htons(1024 + n % c->ports);
		__u32 a = bpf_ntohl(ip->saddr);
		ip->saddr = bpf_htonl((a & 0xffff0000) | (__u16)((n / c->ports) % c->addrs + 1));
	}
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

struct rx_conf {
	__u32 offsets[RX_OFFSETS]; // where a stamp may be; 0 ends the list
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rx_conf);
} rx_conf SEC(".maps");

// Per CPU: stamped frames received, frames without a stamp, records the
// ring buffer had no room for.
#define RX_STAMPED 0
#define RX_FOREIGN 1
#define RX_UNRECORDED 2
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} rx_counts SEC(".maps");

struct rx_record {
	__u32 flow;
	__u32 seq;
	__u64 latency_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);
} rx_records SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&rx_counts, &what);
	if (v)
		*v += 1;
}

SEC("xdp")
int nfv_bench_rx(struct xdp_md *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct rx_conf *c = bpf_map_lookup_elem(&rx_conf, &zero);
	if (!c)
		return XDP_DROP;
#pragma unroll
	for (int i = 0; i < RX_OFFSETS; i++) {
		__u32 off = c->offsets[i];
		if (!off || off > 256)
			break;
		struct stamp *s = data + off;
		if ((void *)(s + 1) > end || s->magic != STAMP_MAGIC)
			continue;
		count(RX_STAMPED);
		struct rx_record r = {
			.flow = s->flow,
			.seq = s->seq,
			.latency_ns = now - s->sent_ns,
		};
		if (bpf_ringbuf_output(&rx_records, &r, sizeof(r), 0))
			count(RX_UNRECORDED);
		return XDP_DROP;
	}
	count(RX_FOREIGN);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// The XDP program nfv attaches to its AF_XDP ports: work the plan placed
// below the workers runs here; everything else goes to the port's AF_XDP
// socket on the queue it arrived on, as libxdp's default program does.
//
// This first engine runs chains made wholly of complete stages (TTL
// decrement, MAC swap, cross-connect), configured by the `config` map.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// What the chain does, set by nfv when it loads the program.
#define DO_TTL 1      // decrement the IPv4 TTL (expiring packets go up)
#define DO_MACSWAP 2  // swap the Ethernet addresses
#define DO_BACK 4     // send back out of the ingress port (XDP_TX)

struct config {
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
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

// The AF_XDP sockets, by queue.
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
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

static __always_inline int up(struct xdp_md *ctx)
{
	count(1);
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
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

SEC("xdp")
int nfv_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->flags)
		return up(ctx);
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return up(ctx);
	if (cfg->flags & DO_TTL) {
		if (eth->h_proto != bpf_htons(ETH_P_IP))
			return up(ctx);
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl < 5 || ip->ttl <= 1)
			return up(ctx);
		ttl_decrement(ip);
	}
	if (cfg->flags & DO_MACSWAP) {
		__u8 tmp[ETH_ALEN];
		__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
		__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
		__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	}
	if (cfg->flags & DO_BACK) {
		count(0);
		return XDP_TX;
	}
	__u32 in = ctx->ingress_ifindex;
	__u32 *out = bpf_map_lookup_elem(&patch, &in);
	if (out) {
		count(0);
		return bpf_redirect(*out, 0);
	}
	return up(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

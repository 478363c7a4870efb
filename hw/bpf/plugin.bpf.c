// What the AF_XDP device plugin's CNI attaches to a pod's device, played
// by `nfv hw xsk-map-server` in labs and tests: every packet to the AF_XDP
// socket of the queue it arrived on, from the XSKMAP the plugin hands
// the pod (no socket there: the kernel's stack).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

SEC("xdp")
int nfv_plugin(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

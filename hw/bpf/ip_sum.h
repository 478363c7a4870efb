// Shared by nfv's XDP programs: the RFC 791 header checksum's sum.
#ifndef NFV_IP_SUM_H
#define NFV_IP_SUM_H

#include <linux/ip.h>

// The one's-complement sum of an option-less IPv4 header, folded.
static __always_inline __u16 ip_sum(const struct iphdr *ip)
{
	const __u16 *w = (const void *)ip;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

#endif

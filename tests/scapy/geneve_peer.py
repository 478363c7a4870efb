#!/usr/bin/python3
"""scapy as a live remote Geneve VTEP (the kernel here has no Geneve
device), run in the namespace of the underlay peer:

    geneve_peer.py IFACE OUR_IP NFV_IP INNER_DST_MAC

Resolves nfv's VTEP address with ARP, sends it a Geneve packet (VNI 100,
one TLV option) carrying an ICMP echo request for 10.10.0.1 from
10.10.0.2 (MAC 02:00:00:00:00:c3), and prints what comes back through the
tunnel: "vni N", "opts class:type:data,...", "icmp TYPE ID SRC DST DATA"."""
import sys
import time

from scapy.all import ARP, ICMP, IP, UDP, AsyncSniffer, Ether, Raw, conf, sendp, srp1
from scapy.contrib.geneve import GENEVE, GeneveOptions

conf.verb = 0
iface, ours, nfv, inner_dst = sys.argv[1:5]
ans = srp1(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=nfv, psrc=ours), iface=iface, timeout=3, retry=3)
if ans is None:
    print("no ARP answer from", nfv)
    sys.exit(1)
opts = [GeneveOptions(classid=0x0102, type=0x01, data=b"\x01\x02\x03\x04")]
pkt = (Ether(dst=ans[ARP].hwsrc) / IP(src=ours, dst=nfv) / UDP(sport=51000, dport=6081)
       / GENEVE(vni=100, proto=0x6558, options=opts)
       / Ether(src="02:00:00:00:00:c3", dst=inner_dst) / IP(src="10.10.0.2", dst="10.10.0.1")
       / ICMP(id=77, seq=1) / Raw(b"scapy-geneve"))
sniffer = AsyncSniffer(iface=iface, count=1, timeout=5,
                       lfilter=lambda p: UDP in p and p[UDP].dport == 6081 and p[IP].src == nfv)
sniffer.start()
time.sleep(0.5)
sendp(pkt, iface=iface)
sniffer.join()
if not sniffer.results:
    print("no reply through the tunnel")
    sys.exit(1)
g = sniffer.results[0][GENEVE]
print("vni", g.vni)
print("opts", ",".join("%04x:%02x:%s" % (o.classid, o.type, bytes(o.data).hex()) for o in g.options))
inner = g.payload
print("icmp", inner[ICMP].type, inner[ICMP].id, inner[IP].src, inner[IP].dst, bytes(inner[Raw].load).decode())

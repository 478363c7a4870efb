#!/usr/bin/python3
"""A gNB played by scapy (scapy.contrib.gtp) on a veth: usage:
gnb.py IFACE UPF_MAC COUNT [telnet]

Sends COUNT G-PDUs from 10.10.0.2 to the UPF 10.10.0.1 (TEID 4660, PDU
Session Container UL QFI 9), each carrying UDP 10.45.0.7:4000 ->
198.51.100.2:7000 "ping N", and prints one line per downlink G-PDU that
comes back within 3 s: `teid qfi pdu-type inner-src inner-dst payload`.
With `telnet`, the UE also sends a TCP SYN to 198.51.100.2:23 first.
"""
import sys
import time

from scapy.all import AsyncSniffer, Ether, IP, TCP, UDP, Raw, sendp, conf
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

iface, upf_mac, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
telnet = sys.argv[4:] == ["telnet"]
conf.verb = 0
sniffer = AsyncSniffer(iface=iface, filter="udp and dst port 2152", store=True)
sniffer.start()
time.sleep(0.5)
if telnet:
    sendp(Ether(dst=upf_mac) / IP(src="10.10.0.2", dst="10.10.0.1") / UDP(sport=2152, dport=2152)
          / GTP_U_Header(teid=4660, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9)
          / IP(src="10.45.0.7", dst="198.51.100.2") / TCP(sport=40001, dport=23, flags="S"), iface=iface)
for i in range(count):
    p = (Ether(dst=upf_mac) / IP(src="10.10.0.2", dst="10.10.0.1") / UDP(sport=2152, dport=2152)
         / GTP_U_Header(teid=4660, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9)
         / IP(src="10.45.0.7", dst="198.51.100.2") / UDP(sport=4000, dport=7000) / Raw(b"ping %d" % i))
    sendp(p, iface=iface)
    time.sleep(0.05)
time.sleep(3)
for p in sniffer.stop():
    # Only what the UPF sent (the sniffer sees our own packets too).
    if GTP_U_Header not in p or p[GTP_U_Header].gtp_type != 255 or p[IP].src != "10.10.0.1":
        continue
    g = p[GTP_U_Header]
    psc = p[GTPPDUSessionContainer] if GTPPDUSessionContainer in p else None
    inner = p.getlayer(IP, 2)
    print(g.teid, psc.QFI if psc else "-", psc.type if psc else "-", inner.src, inner.dst,
          bytes(inner[UDP].payload).decode())

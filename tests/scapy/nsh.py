#!/usr/bin/python3
"""NSH (RFC 8300) both ways with scapy.contrib.nsh:
  nsh.py build OUTDIR IN_MAC   writes into OUTDIR:
     nsh_md1.pcap  NSH over Ethernet to IN_MAC, MD type 1, SPI 10 SI 255
                   TTL 63, context (7, 0, 0, 0), an Ethernet frame inside:
                   TCP 10.0.0.1:40000 -> 203.0.113.5:80 SYN, then the same
                   to port 23 (telnet)
     nsh_md2.pcap  the same with MD type 2: one TLV (class 0xfff6, type
                   1, the tenant 7 as 4 octets)
     nsh_bad.pcap  SI 0; TTL 1; a Length past the frame; SPI 99 (no path)
     gpe_md1.pcap  nsh_md1's packets over VXLAN-GPE (UDP 4790, Next
                   Protocol NSH) from 192.168.100.2 to 192.168.100.1
     plain.pcap    the TCP SYN to port 80 alone, unencapsulated
  nsh.py decode PCAPNG         prints one line per NSH packet scapy finds:
     `iface spi si ttl mdtype nextproto context inner-dst inner-dport`
     (context: MD1's four words in hex, or MD2's raw TLV octets in hex),
     over VXLAN-GPE followed by `via OUTER-SRC>OUTER-DST:UDP-DPORT`

scapy's NSHTLV counts its Length in 4-octet words (an early draft); RFC
8300 2.5.1 counts octets. So MD type 2 TLVs are written here as raw
octets after the NSH header (the NSH Length set by hand), and decoded as
the raw context octets.
"""
import sys

from scapy.all import Ether, IP, UDP, TCP, Raw, wrpcap, rdpcap, PcapNgReader
from scapy.contrib.nsh import NSH
from scapy.layers.vxlan import VXLAN

GW, HOST = "02:00:00:00:0a:fe", "02:00:00:00:0a:01"


def inner(dport):
    return Ether(src=HOST, dst=GW) / IP(src="10.0.0.1", dst="203.0.113.5") / TCP(sport=40000, dport=dport, flags="S")


def build(out, in_mac):
    outer = Ether(src="02:00:00:00:0d:02", dst=in_mac)
    md1 = [outer / NSH(mdtype=1, nextproto=3, spi=10, si=255, ttl=63,
                       context_header=bytes.fromhex("00000007" + "00" * 12)) / inner(p) for p in (80, 23)]
    wrpcap(f"{out}/nsh_md1.pcap", md1)
    tlv = bytes.fromhex("fff6" "01" "04" "00000007")
    md2 = []
    for p in (80, 23):
        head = NSH(mdtype=2, nextproto=3, spi=10, si=255, ttl=63, length=2 + len(tlv) // 4)
        md2.append(outer / Raw(bytes(head)[:8] + tlv + bytes(inner(p))))
    # Raw after Ether: set the EtherType by hand.
    md2 = [Ether(src="02:00:00:00:0d:02", dst=in_mac, type=0x894F) / Raw(bytes(p[Raw])) for p in md2]
    wrpcap(f"{out}/nsh_md2.pcap", md2)
    bad = [
        outer / NSH(mdtype=1, nextproto=3, spi=10, si=0, ttl=63, context_header=b"\0" * 16) / inner(80),
        outer / NSH(mdtype=1, nextproto=3, spi=10, si=255, ttl=1, context_header=b"\0" * 16) / inner(80),
        Ether(src="02:00:00:00:0d:02", dst=in_mac, type=0x894F) / Raw(bytes(NSH(mdtype=2, nextproto=3, spi=10, si=255, length=40))[:8] + b"\0" * 8),
        outer / NSH(mdtype=1, nextproto=3, spi=99, si=255, ttl=63, context_header=b"\0" * 16) / inner(80),
    ]
    wrpcap(f"{out}/nsh_bad.pcap", bad)
    wrpcap(f"{out}/plain.pcap", [inner(80)])
    gpe = [Ether(src="02:00:00:00:0d:02", dst=in_mac) / IP(src="192.168.100.2", dst="192.168.100.1")
           / UDP(sport=50000, dport=4790) / VXLAN(flags=0x0C, NextProtocol=4, vni=0)
           / NSH(mdtype=1, nextproto=3, spi=10, si=255, ttl=63, context_header=bytes.fromhex("00000007" + "00" * 12))
           / inner(p) for p in (80, 23)]
    wrpcap(f"{out}/gpe_md1.pcap", gpe)


def decode(path):
    names = {}
    for p in PcapNgReader(path):
        iface = getattr(p, "sniffed_on", None) or "-"
        # scapy binds NSH under VXLAN by a field name its VXLAN layer does
        # not have (`nextproto`, not `NextProtocol`): decode it by hand.
        if NSH not in p and VXLAN in p and p[VXLAN].NextProtocol == 4:
            n = NSH(bytes(p[VXLAN].payload))
        elif NSH in p:
            n = p[NSH]
        else:
            continue
        raw = bytes(n)
        ctx = raw[8:n.length * 4]
        if n.mdtype == 1:
            context = " ".join(ctx[i:i + 4].hex() for i in range(0, 16, 4))
        else:
            context = ctx.hex()
        rest = Ether(raw[n.length * 4:]) if n.nextproto == 3 else None
        dst = rest[IP].dst if rest is not None and IP in rest else "-"
        dport = rest[TCP].dport if rest is not None and TCP in rest else "-"
        via = ""
        if VXLAN in p:
            via = f" via {p[IP].src}>{p[IP].dst}:{p[UDP].dport}"
        print(iface, n.spi, n.si, n.ttl, n.mdtype, n.nextproto, context, dst, dport, end=via + "\n")


if sys.argv[1] == "build":
    build(sys.argv[2], sys.argv[3])
else:
    decode(sys.argv[2])

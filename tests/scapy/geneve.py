#!/usr/bin/python3
"""scapy as the Geneve peer (the kernel here has no Geneve device).

    geneve.py build OUT.pcap   packets a remote VTEP 192.0.2.2 sends to us
                               (192.0.2.1), VNI 100, with TLV options; prints
                               INDEX HEX-OF-INNER for each
    geneve.py decode IN.pcap   for each Geneve packet: INDEX VNI CRITICAL
                               OPTIONS(class:type:hexdata,...) HEX-OF-INNER
"""
import sys

from scapy.all import IP, UDP, Ether, ICMP, Raw, rdpcap, wrpcap, conf
from scapy.contrib.geneve import GENEVE, GeneveOptions

conf.verb = 0


def build(out):
    inners = [
        Ether(src="02:00:00:00:00:c3", dst="02:00:00:00:00:a1") / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP() / Raw(b"x" * 20),
        Ether(src="02:00:00:00:00:c3", dst="ff:ff:ff:ff:ff:ff") / IP(src="10.0.0.2", dst="10.0.0.255") / UDP(sport=5, dport=6),
        Ether(src="02:00:00:00:00:c3", dst="02:00:00:00:00:a1") / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=7, dport=8) / Raw(b"y" * 300),
    ]
    options = [
        [],
        [GeneveOptions(classid=0x0102, type=0x01, data=b"\x0a\x0b\x0c\x0d")],
        [GeneveOptions(classid=0x0102, type=0x01, data=b"\x01\x02\x03\x04\x05\x06\x07\x08"),
         GeneveOptions(classid=0xffff, type=0x02, data=b"")],
    ]
    pkts = []
    for i, (inner, opts) in enumerate(zip(inners, options)):
        outer = (Ether(src="02:00:00:00:00:ee", dst="02:00:00:00:00:01")
                 / IP(src="192.0.2.2", dst="192.0.2.1", flags="DF")
                 / UDP(sport=50000 + i, dport=6081)
                 / GENEVE(vni=100, proto=0x6558, options=opts)
                 / inner)
        pkts.append(outer)
        print(i, bytes(inner).hex())
    wrpcap(out, pkts)


def decode(path):
    for i, p in enumerate(rdpcap(path)):
        if GENEVE not in p:
            continue
        g = p[GENEVE]
        opts = ",".join("%04x:%02x:%s" % (o.classid, o.type, bytes(o.data).hex()) for o in g.options) or "-"
        print(i, g.vni, g.critical, opts, bytes(g.payload).hex())


if __name__ == "__main__":
    {"build": build, "decode": decode}[sys.argv[1]](sys.argv[2])

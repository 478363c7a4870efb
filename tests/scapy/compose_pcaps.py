#!/usr/bin/python3
"""Captures for replaying composed functions offline, built by scapy:
usage: compose_pcaps.py OUTDIR N3_MAC N6_MAC

Writes into OUTDIR, for `nfv replay --in PORT=FILE`:
  gtpu_up.pcap    G-PDUs from the gNB 10.10.0.2 to the UPF 10.10.0.1
                  (TEID 4660, PDU Session Container UL QFI 9), carrying
                  from the UE 10.45.0.7: TCP SYN :40000 -> 203.0.113.5:80,
                  TCP SYN :40001 -> 203.0.113.5:23 (telnet), UDP :4000 ->
                  203.0.113.5:53
  gtpu_down.pcap  from the data network: TCP SYN-ACK 203.0.113.5:80 ->
                  198.51.100.10:40000, TCP SYN 203.0.113.5:9999 ->
                  198.51.100.10:23 (nobody's mapping)
  vxlan_up.pcap   VXLAN VNI 100 from the remote VTEP 192.168.0.2 to
                  192.168.0.1, carrying from host 10.0.0.1 (MAC
                  02:00:00:00:0a:01) the same TCP pair as the UE's
  vxlan_down.pcap TCP SYN-ACK 203.0.113.5:80 -> 198.51.100.10:40000
The outer frames go to N3_MAC (the UPF's and the VTEP's underlay port)
and N6_MAC (the data network and outside port).
"""
import sys

from scapy.all import Ether, IP, UDP, TCP, Raw, wrpcap
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.vxlan import VXLAN

out, n3_mac, n6_mac = sys.argv[1], sys.argv[2], sys.argv[3]
GNB_MAC, ROUTER_MAC, VTEP_MAC = "02:00:00:00:0b:02", "02:00:00:00:0c:02", "02:00:00:00:0d:02"
HOST_MAC, GW_MAC = "02:00:00:00:0a:01", "02:00:00:00:0a:fe"
SERVER = "203.0.113.5"


def ue_flows(src):
    return [IP(src=src, dst=SERVER) / TCP(sport=40000, dport=80, flags="S", seq=1000),
            IP(src=src, dst=SERVER) / TCP(sport=40001, dport=23, flags="S", seq=2000),
            IP(src=src, dst=SERVER) / UDP(sport=4000, dport=53) / Raw(b"query")]


def gpdu(inner):
    return (Ether(src=GNB_MAC, dst=n3_mac) / IP(src="10.10.0.2", dst="10.10.0.1") / UDP(sport=2152, dport=2152)
            / GTP_U_Header(teid=4660, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9) / inner)


def vxlan(inner):
    return (Ether(src=VTEP_MAC, dst=n3_mac) / IP(src="192.168.0.2", dst="192.168.0.1") / UDP(sport=54321, dport=4789)
            / VXLAN(vni=100, flags=0x08) / Ether(src=HOST_MAC, dst=GW_MAC) / inner)


def from_server(dport, sport, flags):
    return (Ether(src=ROUTER_MAC, dst=n6_mac) / IP(src=SERVER, dst="198.51.100.10")
            / TCP(sport=sport, dport=dport, flags=flags, seq=5000, ack=1001))


wrpcap(f"{out}/gtpu_up.pcap", [gpdu(f) for f in ue_flows("10.45.0.7")])
wrpcap(f"{out}/gtpu_down.pcap", [from_server(40000, 80, "SA"), from_server(23, 9999, "S")])
wrpcap(f"{out}/vxlan_up.pcap", [vxlan(f) for f in ue_flows("10.0.0.1")[:2]])
wrpcap(f"{out}/vxlan_down.pcap", [from_server(40000, 80, "SA")])

#!/usr/bin/python3
"""Prints, for every VXLAN or Geneve packet of the given captures, what
scapy decodes as the inner Ethernet frame:

    FILE INDEX vxlan|geneve VNI HEX

scapy is the independent decoder the VTEP tests compare against (Debian's
python3-scapy loads under /usr/bin/python3)."""
import sys

from scapy.all import PcapReader, UDP, VXLAN, conf
from scapy.contrib.geneve import GENEVE

conf.verb = 0

for path in sys.argv[1:]:
    with PcapReader(path) as r:
        for i, pkt in enumerate(r):
            for layer, name in ((VXLAN, "vxlan"), (GENEVE, "geneve")):
                if layer in pkt:
                    t = pkt[layer]
                    print(path, i, name, t.vni, bytes(t.payload).hex())
                    break

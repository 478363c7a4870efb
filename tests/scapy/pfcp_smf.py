#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer (scapy.contrib.pfcp) over a real UDP
socket, against nfv's N4 endpoint: usage: pfcp_smf.py HOST PORT.

Sends, in order, and prints one line per answer as scapy decodes it
(`-` when nothing came back within a second):
  heartbeat          Heartbeat Request
  setup              Association Setup Request (node id 127.0.0.2)
  setup-no-node-id   Association Setup Request without its node id
  release            Association Release Request
  release-again      the same, no association left
  garbage            8 bytes that are not PFCP
Then prints `raw HEX` for every answer, for tshark.
"""
import socket
import sys

from scapy.contrib.pfcp import (PFCP, IE_NodeId, IE_RecoveryTimeStamp, PFCPAssociationReleaseRequest,
                                PFCPAssociationSetupRequest, PFCPHeartbeatRequest)

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(1.0)
ts = IE_RecoveryTimeStamp(timestamp=3900000000)
node = IE_NodeId(id_type=0, ipv4="127.0.0.2")
requests = [
    ("heartbeat", PFCP(S=0, seq=1) / PFCPHeartbeatRequest(IE_list=[ts])),
    ("setup", PFCP(S=0, seq=2) / PFCPAssociationSetupRequest(IE_list=[node, ts])),
    ("setup-no-node-id", PFCP(S=0, seq=3) / PFCPAssociationSetupRequest(IE_list=[ts])),
    ("release", PFCP(S=0, seq=4) / PFCPAssociationReleaseRequest(IE_list=[node])),
    ("release-again", PFCP(S=0, seq=5) / PFCPAssociationReleaseRequest(IE_list=[node])),
    ("garbage", b"\x00\x01\x02\x03\x04\x05\x06\x07"),
]
raws = []
for name, req in requests:
    s.sendto(bytes(req), (host, port))
    try:
        data = s.recv(65535)
    except socket.timeout:
        print(name, "-")
        continue
    raws.append(data)
    r = PFCP(data)
    causes = [ie.cause for ie in getattr(r.payload, "IE_list", []) if ie.__class__.__name__ == "IE_Cause"]
    nodes = [ie.ipv4 for ie in getattr(r.payload, "IE_list", []) if ie.__class__.__name__ == "IE_NodeId"]
    print(name, r.message_type, r.seq, r.S, causes[0] if causes else "none", nodes[0] if nodes else "none")
for data in raws:
    print("raw", data.hex())

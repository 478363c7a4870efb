#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer for a live handover: usage:
handover_smf.py HOST PORT

Sets up an association and a session for UE 10.45.0.9 (uplink F-TEID
CHOOSE; downlink into TEID 0xa to the gNB 10.10.0.2), prints
`established CAUSE`, then reads a line from stdin and switches the
downlink (Update FAR: TEID 0xb to the gNB 10.10.0.3, the Xn handover's
path switch), prints `switched CAUSE`, reads a line again, deletes the
session and prints `deleted CAUSE`.
"""
import socket
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_FAR_Id, IE_FSEID, IE_NodeId, IE_OuterHeaderCreation,
                                IE_RecoveryTimeStamp, IE_UpdateFAR, IE_UpdateForwardingParameters,
                                PFCPAssociationSetupRequest, PFCPSessionDeletionRequest,
                                PFCPSessionEstablishmentRequest, PFCPSessionModificationRequest)

from smf import usual_rules

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5.0)


def ask(req):
    s.sendto(bytes(req), (host, port))
    return PFCP(s.recv(65535))


def cause(r):
    return [ie.cause for ie in r.payload.IE_list if ie.__class__.__name__ == "IE_Cause"][0]


node = IE_NodeId(id_type=0, ipv4="127.0.0.2")
ask(PFCP(S=0, seq=1) / PFCPAssociationSetupRequest(IE_list=[node, IE_RecoveryTimeStamp(timestamp=3900000000)]))
r = ask(PFCP(S=1, seid=0, seq=2) / PFCPSessionEstablishmentRequest(
    IE_list=[node, IE_FSEID(v4=1, seid=0x3333, ipv4="127.0.0.2")] + usual_rules("10.45.0.9", 0xa, "10.10.0.2", [])))
up_seid = [ie.seid for ie in r.payload.IE_list if ie.__class__.__name__ == "IE_FSEID"][0]
print("established", cause(r), flush=True)
sys.stdin.readline()
r = ask(PFCP(S=1, seid=up_seid, seq=3) / PFCPSessionModificationRequest(IE_list=[IE_UpdateFAR(IE_list=[
    IE_FAR_Id(id=2), IE_ApplyAction(FORW=1),
    IE_UpdateForwardingParameters(IE_list=[IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=0xb, ipv4="10.10.0.3")])])]))
print("switched", cause(r), flush=True)
sys.stdin.readline()
print("deleted", cause(ask(PFCP(S=1, seid=up_seid, seq=4) / PFCPSessionDeletionRequest())), flush=True)

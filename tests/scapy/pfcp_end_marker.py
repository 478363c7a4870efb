#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer switching a session's downlink
tunnel, with and without asking for End Markers (TS 29.244 8.2.58
PFCPSMReq-Flags SNDEM in Update Forwarding Parameters; TS 23.502
4.9.1.2.2: the UPF sends End Markers on the old path after switching):
usage: pfcp_end_marker.py HOST PORT

  established CAUSE       UE 10.45.0.12, downlink into TEID 0x5555 toward
                          the gNB 10.10.0.2
  wait
  switched CAUSE          Update FAR 2: TEID 0x6666 toward 10.10.0.3, SNDEM
  wait
  switched-quietly CAUSE  Update FAR 2: TEID 0x7777 toward 10.10.0.2, no
                          SNDEM
  wait
Then `raw HEX` for every message the UPF sent, for tshark.
"""
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_FAR_Id, IE_FSEID, IE_NodeId, IE_OuterHeaderCreation,
                                IE_PFCPSMReqFlags, IE_RecoveryTimeStamp, IE_UpdateFAR, IE_UpdateForwardingParameters,
                                PFCPAssociationSetupRequest, PFCPSessionEstablishmentRequest,
                                PFCPSessionModificationRequest)

from smf import N4, cause, ies, say, usual_rules

n4 = N4(local="127.0.0.4")
node = IE_NodeId(id_type=0, ipv4="127.0.0.4")
n4.ask(PFCP(S=0, seq=1) / PFCPAssociationSetupRequest(IE_list=[node, IE_RecoveryTimeStamp(timestamp=3900000000)]))
r = n4.ask(PFCP(S=1, seid=0, seq=2) / PFCPSessionEstablishmentRequest(
    IE_list=[node, IE_FSEID(v4=1, seid=0x5555, ipv4="127.0.0.4")] + usual_rules("10.45.0.12", 0x5555, "10.10.0.2", [])))
up_seid = ies(r.payload, "IE_FSEID")[0].seid
say("established", cause(r))
say("wait")
sys.stdin.readline()


def switch(seq, teid, gnb, flags):
    parameters = [IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=teid, ipv4=gnb)] + flags
    return n4.ask(PFCP(S=1, seid=up_seid, seq=seq) / PFCPSessionModificationRequest(IE_list=[IE_UpdateFAR(IE_list=[
        IE_FAR_Id(id=2), IE_ApplyAction(FORW=1), IE_UpdateForwardingParameters(IE_list=parameters)])]))


say("switched", cause(switch(3, 0x6666, "10.10.0.3", [IE_PFCPSMReqFlags(SNDEM=1)])))
say("wait")
sys.stdin.readline()
say("switched-quietly", cause(switch(4, 0x7777, "10.10.0.2", [])))
say("wait")
sys.stdin.readline()
n4.print_raws()

#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer for a UE in idle mode (TS 23.502
4.2.3.3, network triggered service request): usage: pfcp_paging.py HOST PORT

  established CAUSE     a session for UE 10.45.0.9 whose downlink FAR
                        buffers and asks to be notified (BUFF, NOCP)
  wait                  (the test sends downlink packets: held)
  report SEID DLDR PDR  the Session Report Request scapy decoded: report
                        type DLDR, the Downlink Data Report's PDR ID;
                        answered
  forwarding CAUSE      the UE paged and back: Update FAR 2 to forward into
                        TEID 0x7777 toward the gNB 10.10.0.2
  wait                  (the test sends one more: all come out, in order)
  deleted CAUSE
Then `raw HEX` for every message the UPF sent, for tshark.
"""
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_Cause, IE_CreateFAR, IE_FAR_Id, IE_FSEID, IE_NodeId,
                                IE_OuterHeaderCreation, IE_RecoveryTimeStamp, IE_UpdateFAR,
                                IE_UpdateForwardingParameters, IE_DestinationInterface, PFCPAssociationSetupRequest,
                                PFCPSessionDeletionRequest, PFCPSessionEstablishmentRequest,
                                PFCPSessionModificationRequest, PFCPSessionReportResponse)

from smf import N4, cause, ies, say, usual_rules

n4 = N4()
node = IE_NodeId(id_type=0, ipv4="127.0.0.2")
n4.ask(PFCP(S=0, seq=1) / PFCPAssociationSetupRequest(IE_list=[node, IE_RecoveryTimeStamp(timestamp=3900000000)]))
uplink, downlink, far_up, _ = usual_rules("10.45.0.9", 0x5555, "10.10.0.2", [])
idle = IE_CreateFAR(IE_list=[IE_FAR_Id(id=2), IE_ApplyAction(BUFF=1, NOCP=1)])
r = n4.ask(PFCP(S=1, seid=0, seq=2) / PFCPSessionEstablishmentRequest(
    IE_list=[node, IE_FSEID(v4=1, seid=0x4444, ipv4="127.0.0.2"), uplink, downlink, far_up, idle]))
up_seid = ies(r.payload, "IE_FSEID")[0].seid
say("established", cause(r))
say("wait")
sys.stdin.readline()
rep = n4.receive()
rt = ies(rep.payload, "IE_ReportType")[0]
dldr = ies(rep.payload, "IE_DownlinkDataReport")[0]
pdr = [sub.id for sub in dldr.IE_list if sub.__class__.__name__ == "IE_PDR_Id"][0]
say("report", "%#x" % rep.seid, "DLDR" if rt.DLDR else "other", pdr)
n4.send(PFCP(S=1, seid=rep.seid, seq=rep.seq) / PFCPSessionReportResponse(IE_list=[IE_Cause(cause=1)]))
r = n4.ask(PFCP(S=1, seid=up_seid, seq=3) / PFCPSessionModificationRequest(IE_list=[IE_UpdateFAR(IE_list=[
    IE_FAR_Id(id=2), IE_ApplyAction(FORW=1),
    IE_UpdateForwardingParameters(IE_list=[IE_DestinationInterface(interface=0),
                                           IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=0x7777, ipv4="10.10.0.2")])])]))
say("forwarding", cause(r))
say("wait")
sys.stdin.readline()
say("deleted", cause(n4.ask(PFCP(S=1, seid=up_seid, seq=4) / PFCPSessionDeletionRequest())))
n4.print_raws()

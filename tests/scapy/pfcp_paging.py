#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer for UEs in idle mode (TS 23.502
4.2.3.3, network triggered service request), listening on 127.0.0.3:8805
(where the UPF's Session Reports go, TS 29.244 4.2.2): usage:
pfcp_paging.py HOST PORT

  established C1 C2     two sessions, UEs 10.45.0.9 and 10.45.0.10, whose
                        downlink FARs buffer and ask to be notified (BUFF,
                        NOCP)
  wait                  (the test sends downlink packets to both: held)
  report SEID DLDR PDR  twice, one per session (in the order they came):
                        the Session Report Request scapy decoded, report
                        type DLDR, the Downlink Data Report's PDR ID;
                        answered
  forwarding C1 C2      the UEs paged and back: Update FAR 2 of each to
                        forward into TEID 0x7777 / 0x7778 toward the gNB
  wait                  (the test sends more: all come out, in order)
  deleted C1 C2
Then `raw HEX` for every message the UPF sent, for tshark.
"""
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_Cause, IE_CreateFAR, IE_FAR_Id, IE_FSEID, IE_NodeId,
                                IE_OuterHeaderCreation, IE_RecoveryTimeStamp, IE_UpdateFAR,
                                IE_UpdateForwardingParameters, IE_DestinationInterface, PFCPAssociationSetupRequest,
                                PFCPSessionDeletionRequest, PFCPSessionEstablishmentRequest,
                                PFCPSessionModificationRequest, PFCPSessionReportResponse)

from smf import N4, cause, ies, say, usual_rules

n4 = N4(local="127.0.0.3")
node = IE_NodeId(id_type=0, ipv4="127.0.0.3")
n4.ask(PFCP(S=0, seq=1) / PFCPAssociationSetupRequest(IE_list=[node, IE_RecoveryTimeStamp(timestamp=3900000000)]))
idle = IE_CreateFAR(IE_list=[IE_FAR_Id(id=2), IE_ApplyAction(BUFF=1, NOCP=1)])
ues = {0x4444: "10.45.0.9", 0x4445: "10.45.0.10"}
up_seids = {}
for i, (cp_seid, ue) in enumerate(ues.items()):
    uplink, downlink, far_up, _ = usual_rules(ue, 0x5555, "10.10.0.2", [])
    r = n4.ask(PFCP(S=1, seid=0, seq=2 + i) / PFCPSessionEstablishmentRequest(
        IE_list=[node, IE_FSEID(v4=1, seid=cp_seid, ipv4="127.0.0.3"), uplink, downlink, far_up, idle]))
    up_seids[cp_seid] = (ies(r.payload, "IE_FSEID")[0].seid, cause(r))
say("established", *[c for _, c in up_seids.values()])
say("wait")
sys.stdin.readline()
for _ in ues:
    rep = n4.receive()
    rt = ies(rep.payload, "IE_ReportType")[0]
    dldr = ies(rep.payload, "IE_DownlinkDataReport")[0]
    pdr = [sub.id for sub in dldr.IE_list if sub.__class__.__name__ == "IE_PDR_Id"][0]
    say("report", "%#x" % rep.seid, "DLDR" if rt.DLDR else "other", pdr)
    n4.send(PFCP(S=1, seid=rep.seid, seq=rep.seq) / PFCPSessionReportResponse(IE_list=[IE_Cause(cause=1)]))
causes = []
for i, (up_seid, _) in enumerate(up_seids.values()):
    r = n4.ask(PFCP(S=1, seid=up_seid, seq=10 + i) / PFCPSessionModificationRequest(IE_list=[IE_UpdateFAR(IE_list=[
        IE_FAR_Id(id=2), IE_ApplyAction(FORW=1),
        IE_UpdateForwardingParameters(IE_list=[
            IE_DestinationInterface(interface=0),
            IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=0x7777 + i, ipv4="10.10.0.2")])])]))
    causes.append(cause(r))
say("forwarding", *causes)
say("wait")
sys.stdin.readline()
say("deleted", *[cause(n4.ask(PFCP(S=1, seid=s, seq=20 + i) / PFCPSessionDeletionRequest()))
                 for i, (s, _) in enumerate(up_seids.values())])
n4.print_raws()

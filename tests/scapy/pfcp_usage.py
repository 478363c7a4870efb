#!/usr/bin/python3
"""An SMF played by scapy's PFCP layer (scapy.contrib.pfcp) for usage
reporting, QER and URR changes, against nfv's N4 endpoint while traffic
runs through the UPF stage: usage: pfcp_usage.py HOST PORT.

The test driving the data path and this script take turns: the script
prints a line and, where it says `wait`, reads one from stdin (the test
has run the traffic asked for) before going on. Lines:

  establish-unassociated CAUSE   a session from a node with no association
  establish CAUSE TEID V4 V6     association, then a session: an uplink PDR
                                 (F-TEID CHOOSE, either family; the F-TEID
                                 we chose, its addresses) and a downlink PDR for UE
                                 10.45.0.9, both counted by URR 1 (volume
                                 and duration, volume threshold 3000 octets
                                 total), both under QER 1 (gates open)
  gpdu HEX                       an uplink G-PDU (scapy's GTP-U, PDU Session
                                 Container QFI 9) into that TEID, inner UDP
                                 10.45.0.9:4000 -> 198.51.100.9:53, 972
                                 octets of inner packet; the test sends it
                                 several times
  wait                           (the test runs 3 uplink and 3 downlink)
  report SEID TYPE URR SEQN TRIGGER TOTAL UL DL   the Session Report Request
                                 scapy decoded (not answered: the UPF must
                                 send it again after T1)
  again SAME_SEQ URR SEQN        the retransmission, then answered
  modify CAUSE URR SEQN TRIGGER TOTAL UL DL   a modification: URR 1
                                 removed (its last usage in the response),
                                 URR 2 created, both PDRs updated to URR 2,
                                 QER 1's downlink gate closed
  wait                           (the test runs 2 uplink, 2 downlink)
  filter CAUSE                   a modification: a downlink PDR of precedence
                                 100 with an SDF filter (UDP to the UE's port
                                 4000) and a dropping FAR; the gate opened
  wait                           (the test sends to ports 4000 and 4001)
  unfilter CAUSE                 that PDR and FAR removed
  wait                           (the test sends to port 4000)
  delete CAUSE URR SEQN TRIGGER TOTAL UL DL   deletion, URR 2's last usage
Then `raw HEX` for every message the UPF sent, for tshark.
"""
import sys

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_CreateFAR, IE_CreatePDR, IE_CreateQER, IE_CreateURR,
                                IE_FAR_Id, IE_FSEID, IE_GateStatus, IE_MeasurementMethod, IE_NodeId, IE_PDI,
                                IE_PDR_Id, IE_Precedence, IE_QER_Id, IE_RecoveryTimeStamp, IE_RemoveFAR,
                                IE_RemovePDR, IE_RemoveURR, IE_SDF_Filter, IE_ReportingTriggers, IE_SourceInterface,
                                IE_UE_IP_Address, IE_UpdatePDR, IE_UpdateQER, IE_URR_Id, IE_VolumeThreshold,
                                IE_Cause, PFCPAssociationSetupRequest, PFCPSessionDeletionRequest,
                                PFCPSessionEstablishmentRequest, PFCPSessionModificationRequest,
                                PFCPSessionReportResponse)
from scapy.layers.inet import IP, UDP
from smf import N4, cause, ies, say, usual_rules

n4 = N4(local="127.0.0.2")


def usage(report):
    """URR SEQN TRIGGER TOTAL UL DL of a usage report IE."""
    sub = {ie.__class__.__name__: ie for ie in report.IE_list}
    t = sub["IE_UsageReportTrigger"]
    trig = [f for f in ("PERIO", "VOLTH", "IMMER", "TERMR") if getattr(t, f)]
    v = sub["IE_VolumeMeasurement"]
    return "%d %d %s %d %d %d" % (sub["IE_URR_Id"].id, sub["IE_UR_SEQN"].number, ",".join(trig) or "-",
                                  v.total, v.uplink, v.downlink)


ts = IE_RecoveryTimeStamp(timestamp=3900000000)
node = IE_NodeId(id_type=0, ipv4="127.0.0.2")
cp_fseid = IE_FSEID(v4=1, seid=0x2222, ipv4="127.0.0.2")
rules = usual_rules("10.45.0.9", 0x5555, "10.10.0.2", [IE_QER_Id(id=1), IE_URR_Id(id=1)])
qer = IE_CreateQER(IE_list=[IE_QER_Id(id=1), IE_GateStatus(ul=0, dl=0)])


def urr(n, threshold):
    triggers = IE_ReportingTriggers(volume_threshold=1 if threshold else 0)
    body = [IE_URR_Id(id=n), IE_MeasurementMethod(VOLUM=1, DURAT=1), triggers]
    if threshold:
        body.append(IE_VolumeThreshold(TOVOL=1, total=threshold))
    return IE_CreateURR(IE_list=body)


establish = PFCPSessionEstablishmentRequest(IE_list=[node, cp_fseid, *rules, qer,
                                                     urr(1, 3000)])
r = n4.ask(PFCP(S=1, seid=0, seq=1) / establish)
say("establish-unassociated", cause(r))
n4.ask(PFCP(S=0, seq=2) / PFCPAssociationSetupRequest(IE_list=[node, ts]))
r = n4.ask(PFCP(S=1, seid=0, seq=3) / establish)
up_seid = ies(r.payload, "IE_FSEID")[0].seid
fteid = [sub for c in ies(r.payload, "IE_CreatedPDR") for sub in c.IE_list
         if sub.__class__.__name__ == "IE_FTEID"][0]
teid = fteid.TEID
say("establish", cause(r), "%#x" % teid, fteid.ipv4 if fteid.V4 else "-", fteid.ipv6 if fteid.V6 else "-")
inner = IP(src="10.45.0.9", dst="198.51.100.9") / UDP(sport=4000, dport=53) / (b"u" * 944)
gpdu = (IP(src="10.10.0.2", dst="10.10.0.1") / UDP(sport=2152, dport=2152) /
        GTP_U_Header(teid=teid, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=9) / inner)
say("gpdu", bytes(gpdu).hex())
say("wait")
sys.stdin.readline()

# The report: decoded, left unanswered, so the UPF must send it again.
rep = n4.receive()
rt = ies(rep.payload, "IE_ReportType")[0]
say("report", "%#x" % rep.seid, "USAR" if rt.USAR else "other", usage(ies(rep.payload, "IE_UsageReport_SRR")[0]))
again = n4.receive()
say("again", int(again.seq == rep.seq), usage(ies(again.payload, "IE_UsageReport_SRR")[0]))
n4.send(PFCP(S=1, seid=rep.seid, seq=rep.seq) / PFCPSessionReportResponse(IE_list=[IE_Cause(cause=1)]))

modify = PFCPSessionModificationRequest(IE_list=[
    IE_RemoveURR(IE_list=[IE_URR_Id(id=1)]),
    urr(2, 0),
    IE_UpdatePDR(IE_list=[IE_PDR_Id(id=1), IE_URR_Id(id=2)]),
    IE_UpdatePDR(IE_list=[IE_PDR_Id(id=2), IE_URR_Id(id=2)]),
    IE_UpdateQER(IE_list=[IE_QER_Id(id=1), IE_GateStatus(ul=0, dl=1)]),
])
r = n4.ask(PFCP(S=1, seid=up_seid, seq=4) / modify)
say("modify", cause(r), " ".join(usage(u) for u in ies(r.payload, "IE_UsageReport_SMR")))
say("wait")
sys.stdin.readline()
# A filtered downlink PDR before the usual one (the general PDR walk):
# UDP to the UE's port 4000 dropped; the gate opened again.
sdf = IE_SDF_Filter(FD=1, flow_description="permit out 17 from any to assigned 4000")
modify = PFCPSessionModificationRequest(IE_list=[
    IE_CreateFAR(IE_list=[IE_FAR_Id(id=3), IE_ApplyAction(DROP=1)]),
    IE_CreatePDR(IE_list=[
        IE_PDR_Id(id=3), IE_Precedence(precedence=100),
        IE_PDI(IE_list=[IE_SourceInterface(interface=1), IE_UE_IP_Address(SD=1, V4=1, ipv4="10.45.0.9"), sdf]),
        IE_FAR_Id(id=3), IE_URR_Id(id=2)]),
    IE_UpdateQER(IE_list=[IE_QER_Id(id=1), IE_GateStatus(ul=0, dl=0)]),
])
r = n4.ask(PFCP(S=1, seid=up_seid, seq=6) / modify)
say("filter", cause(r))
say("wait")
sys.stdin.readline()
modify = PFCPSessionModificationRequest(IE_list=[
    IE_RemovePDR(IE_list=[IE_PDR_Id(id=3)]),
    IE_RemoveFAR(IE_list=[IE_FAR_Id(id=3)]),
])
r = n4.ask(PFCP(S=1, seid=up_seid, seq=7) / modify)
say("unfilter", cause(r))
say("wait")
sys.stdin.readline()
r = n4.ask(PFCP(S=1, seid=up_seid, seq=5) / PFCPSessionDeletionRequest())
say("delete", cause(r), " ".join(usage(u) for u in ies(r.payload, "IE_UsageReport_SDR")))
n4.print_raws()

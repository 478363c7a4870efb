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
  version-2          a Heartbeat Request of PFCP version 2
  establish          Session Establishment: an uplink PDR (F-TEID CHOOSE,
                     UE 10.45.0.9, outer header removal) and a downlink one
                     (UE 10.45.0.9), their FARs (forward to Core; forward to
                     Access in TEID 0x5555 to 10.10.0.2), and a QER both
                     use (gates open, MBR 8000 kbit/s up, 16000 down, QFI 9)
  modify             Session Modification: Update FAR 2 into TEID 0x6666 to
                     10.10.0.3 (a handover to another gNB)
  modify-bad-far     Session Modification updating a FAR the session lacks
  delete             Session Deletion of the session established
  delete-again       the same, no such session
  establish-again    the establishment sent again (same sequence)
  modify-foreign     a modification from another host (127.0.0.5)
  choose-id          a dual-stack session (UE 10.45.0.11 and 2001:db8:11::1)
                     whose two uplink PDRs ask CHOOSE with one CHOOSE ID
  establish-reused-seq  another session, its sequence number the first
                     establishment's
Then prints `raw HEX` for every answer, for tshark.
"""
import socket
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_CreatePDR, IE_CreateQER, IE_FAR_Id, IE_FSEID, IE_FTEID,
                                IE_GateStatus, IE_MBR, IE_NodeId, IE_OuterHeaderCreation, IE_OuterHeaderRemoval,
                                IE_PDI, IE_PDR_Id, IE_Precedence, IE_QER_Id, IE_QFI, IE_RecoveryTimeStamp,
                                IE_SourceInterface, IE_UE_IP_Address, IE_UpdateFAR, IE_UpdateForwardingParameters,
                                PFCPAssociationReleaseRequest, PFCPAssociationSetupRequest, PFCPHeartbeatRequest,
                                PFCPSessionDeletionRequest, PFCPSessionEstablishmentRequest,
                                PFCPSessionModificationRequest)

from smf import usual_rules

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
    ("version-2", PFCP(version=2, S=0, seq=11) / PFCPHeartbeatRequest(IE_list=[ts])),
]
rules = usual_rules("10.45.0.9", 0x5555, "10.10.0.2", [IE_QER_Id(id=1)])
qer = IE_CreateQER(IE_list=[IE_QER_Id(id=1), IE_GateStatus(ul=0, dl=0), IE_MBR(ul=8000, dl=16000), IE_QFI(QFI=9)])
cp_fseid = IE_FSEID(v4=1, seid=0x1111, ipv4="127.0.0.2")
requests.append(("setup2", PFCP(S=0, seq=6) / PFCPAssociationSetupRequest(IE_list=[node, ts])))
requests.append(("establish", PFCP(S=1, seid=0, seq=7) / PFCPSessionEstablishmentRequest(
    IE_list=[node, cp_fseid, *rules, qer])))
raws = []
up_seid = None


def show(name, r):
    """One line: name, type, sequence, S, cause, node id, then for an
    establishment our F-SEID and the Created PDR's F-TEID."""
    ies = getattr(r.payload, "IE_list", [])
    causes = [ie.cause for ie in ies if ie.__class__.__name__ == "IE_Cause"]
    nodes = [ie.ipv4 for ie in ies if ie.__class__.__name__ == "IE_NodeId"]
    extra = ""
    for ie in ies:
        if ie.__class__.__name__ == "IE_FSEID":
            extra += " fseid=%d@%s" % (ie.seid, ie.ipv4)
        if ie.__class__.__name__ == "IE_CreatedPDR":
            for sub in ie.IE_list:
                if sub.__class__.__name__ == "IE_PDR_Id":
                    extra += " created-pdr=%d" % sub.id
                if sub.__class__.__name__ == "IE_FTEID":
                    extra += " fteid=%#x@%s" % (sub.TEID, sub.ipv4)
    print(name, r.message_type, r.seq, r.S, causes[0] if causes else "none", nodes[0] if nodes else "none", extra.strip() or "-")
for name, req in requests:
    s.sendto(bytes(req), (host, port))
    try:
        data = s.recv(65535)
    except socket.timeout:
        print(name, "-")
        continue
    raws.append(data)
    r = PFCP(data)
    show(name, r)
    if name == "establish":
        up_seid = [ie.seid for ie in r.payload.IE_list if ie.__class__.__name__ == "IE_FSEID"][0]
# The establishment sent again (its response lost, say): the same answer,
# not a second session.
s.sendto(bytes(requests[-1][1]), (host, port))
data = s.recv(65535)
raws.append(data)
show("establish-again", PFCP(data))
def handover(far_id, teid, gnb):
    return PFCPSessionModificationRequest(IE_list=[IE_UpdateFAR(IE_list=[
        IE_FAR_Id(id=far_id), IE_ApplyAction(FORW=1),
        IE_UpdateForwardingParameters(IE_list=[IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=teid, ipv4=gnb)])])])


# A host that is not the SMF: as if the session did not exist.
foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
foreign.bind(("127.0.0.5", 0))
foreign.settimeout(1.0)
foreign.sendto(bytes(PFCP(S=1, seid=up_seid, seq=9) / handover(2, 0x9999, "10.10.0.9")), (host, port))
data = foreign.recv(65535)
raws.append(data)
show("modify-foreign", PFCP(data))
for seq, (name, body) in enumerate((("modify", handover(2, 0x6666, "10.10.0.3")),
                                    ("modify-bad-far", handover(9, 1, "10.10.0.4"))), 9):
    s.sendto(bytes(PFCP(S=1, seid=up_seid, seq=seq) / body), (host, port))
    data = s.recv(65535)
    raws.append(data)
    show(name, PFCP(data))
for seq, name in enumerate(("delete", "delete-again"), 12):
    s.sendto(bytes(PFCP(S=1, seid=up_seid, seq=seq) / PFCPSessionDeletionRequest()), (host, port))
    data = s.recv(65535)
    raws.append(data)
    show(name, PFCP(data))
# Two uplink PDRs asking CHOOSE with one CHOOSE ID (QoS flows of one PDU
# session on one N3 tunnel): one F-TEID for both.
uplink, downlink, far_up, far_down = usual_rules("10.45.0.11", 0x5555, "10.10.0.2", [])
second = IE_CreatePDR(IE_list=[
    IE_PDR_Id(id=3), IE_Precedence(precedence=100),
    IE_PDI(IE_list=[IE_SourceInterface(interface=0), IE_FTEID(CH=1, CHID=1, V4=1, choose_id=5),
                    IE_UE_IP_Address(V4=1, ipv4="10.45.0.11"), IE_QFI(QFI=5)]),
    IE_OuterHeaderRemoval(header=0), IE_FAR_Id(id=1)])
for sub in uplink.IE_list:
    if sub.__class__.__name__ == "IE_PDI":
        for f in sub.IE_list:
            if f.__class__.__name__ == "IE_FTEID":
                f.CHID, f.choose_id, f.V6 = 1, 5, 0
# A dual-stack PDU session: the UE's IPv6 address too (its /64 is the
# session's).
for pdr in (uplink, second, downlink):
    for sub in pdr.IE_list:
        if sub.__class__.__name__ == "IE_PDI":
            for f in sub.IE_list:
                if f.__class__.__name__ == "IE_UE_IP_Address":
                    f.V6, f.ipv6 = 1, "2001:db8:11::1"
s.sendto(bytes(PFCP(S=1, seid=0, seq=14) / PFCPSessionEstablishmentRequest(
    IE_list=[node, IE_FSEID(v4=1, seid=0x1112, ipv4="127.0.0.2"), uplink, second, downlink, far_up, far_down])),
    (host, port))
data = s.recv(65535)
raws.append(data)
show("choose-id", PFCP(data))
# Another establishment that reuses an earlier sequence number (an SMF
# that restarted, say): a new request, not a retransmission.
s.sendto(bytes(PFCP(S=1, seid=0, seq=7) / PFCPSessionEstablishmentRequest(
    IE_list=[node, IE_FSEID(v4=1, seid=0x1113, ipv4="127.0.0.2"),
             *usual_rules("10.45.0.13", 0x5555, "10.10.0.2", [])])), (host, port))
data = s.recv(65535)
raws.append(data)
show("establish-reused-seq", PFCP(data))
for data in raws:
    print("raw", data.hex())

#!/usr/bin/python3
"""Templates for an SMF establishing sessions by the thousand, built by
scapy's PFCP layer: prints `associate HEX` (an Association Setup Request
from node 127.0.0.2) and `establish HEX` (a Session Establishment Request
of the usual session, smf_rules.py: UE 10.45.0.9, CP SEID
0x5eed5eed5eed5eed, downlink into TEID 0x5555 toward 10.10.0.2, a URR of
volume with a 1 GB threshold on both PDRs). The test patches the sequence
number, the CP SEID and the UE address into copies."""
from scapy.contrib.pfcp import (PFCP, IE_CreateURR, IE_FSEID, IE_MeasurementMethod, IE_NodeId, IE_RecoveryTimeStamp,
                                IE_ReportingTriggers, IE_URR_Id, IE_VolumeThreshold, PFCPAssociationSetupRequest,
                                PFCPSessionEstablishmentRequest)

from smf import usual_rules

node = IE_NodeId(id_type=0, ipv4="127.0.0.2")
setup = PFCP(S=0, seq=1) / PFCPAssociationSetupRequest(IE_list=[node, IE_RecoveryTimeStamp(timestamp=3900000000)])
urr = IE_CreateURR(IE_list=[IE_URR_Id(id=1), IE_MeasurementMethod(VOLUM=1), IE_ReportingTriggers(volume_threshold=1),
                            IE_VolumeThreshold(TOVOL=1, total=10 ** 9)])
establish = PFCP(S=1, seid=0, seq=2) / PFCPSessionEstablishmentRequest(IE_list=[
    node, IE_FSEID(v4=1, seid=0x5eed5eed5eed5eed, ipv4="127.0.0.2"), urr]
    + usual_rules("10.45.0.9", 0x5555, "10.10.0.2", [IE_URR_Id(id=1)]))
print("associate", bytes(setup).hex())
print("establish", bytes(establish).hex())

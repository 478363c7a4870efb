"""The usual PDU session's rules as an SMF writes them, in scapy's PFCP
layer, for the SMF scripts beside this file: an uplink PDR (F-TEID
CHOOSE, IPv4 or IPv6, outer header removal) and a downlink PDR for one UE, their FARs
(forward to Core; forward to Access in a gNB's tunnel)."""
from scapy.contrib.pfcp import (IE_ApplyAction, IE_CreateFAR, IE_CreatePDR, IE_DestinationInterface, IE_FAR_Id,
                                IE_ForwardingParameters, IE_FTEID, IE_OuterHeaderCreation, IE_OuterHeaderRemoval,
                                IE_PDI, IE_PDR_Id, IE_Precedence, IE_SourceInterface, IE_UE_IP_Address)


def usual_rules(ue, teid, gnb, pdr_extra):
    """[uplink PDR 1, downlink PDR 2, FAR 1, FAR 2] for UE address `ue`,
    downlink into TEID `teid` toward `gnb`; `pdr_extra` (QER and URR ids)
    appended to both PDRs."""
    uplink = IE_CreatePDR(IE_list=[
        IE_PDR_Id(id=1), IE_Precedence(precedence=200),
        IE_PDI(IE_list=[IE_SourceInterface(interface=0), IE_FTEID(CH=1, V4=1, V6=1), IE_UE_IP_Address(V4=1, ipv4=ue)]),
        IE_OuterHeaderRemoval(header=0), IE_FAR_Id(id=1)] + pdr_extra)
    downlink = IE_CreatePDR(IE_list=[
        IE_PDR_Id(id=2), IE_Precedence(precedence=200),
        IE_PDI(IE_list=[IE_SourceInterface(interface=1), IE_UE_IP_Address(SD=1, V4=1, ipv4=ue)]),
        IE_FAR_Id(id=2)] + pdr_extra)
    far_up = IE_CreateFAR(IE_list=[IE_FAR_Id(id=1), IE_ApplyAction(FORW=1),
                                   IE_ForwardingParameters(IE_list=[IE_DestinationInterface(interface=1)])])
    far_down = IE_CreateFAR(IE_list=[IE_FAR_Id(id=2), IE_ApplyAction(FORW=1),
                                     IE_ForwardingParameters(IE_list=[
                                         IE_DestinationInterface(interface=0),
                                         IE_OuterHeaderCreation(GTPUUDPIPV4=1, TEID=teid, ipv4=gnb)])])
    return [uplink, downlink, far_up, far_down]

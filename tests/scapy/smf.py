"""What the SMF scripts beside this file share, in scapy's PFCP layer: the
usual PDU session's rules (an uplink PDR with F-TEID CHOOSE, IPv4 or
IPv6, and outer header removal, a downlink PDR for one UE, their FARs:
forward to Core; forward to Access in a gNB's tunnel), and a talk with
the UPF's N4 endpoint (requests sent, answers decoded by scapy and kept
for tshark, lines printed for the test that drives the script)."""
import socket
import sys

from scapy.contrib.pfcp import (PFCP, IE_ApplyAction, IE_CreateFAR, IE_CreatePDR, IE_DestinationInterface, IE_FAR_Id,
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


def say(*words):
    """A line for the test, at once."""
    print(*words, flush=True)


def ies(msg, name):
    """The IEs of class `name` in a message's IE list."""
    return [ie for ie in getattr(msg, "IE_list", []) if ie.__class__.__name__ == name]


def cause(r):
    """A response's cause value ("none" without one)."""
    c = ies(r.payload, "IE_Cause")
    return c[0].cause if c else "none"


class N4:
    """A UDP socket to the UPF at HOST PORT (the script's arguments), from
    `local`:8805 when given (where the UPF sends its requests: the SMF's
    F-SEID address, TS 29.244 4.2.2), else an ephemeral port; every
    message received kept in `raws`."""

    def __init__(self, local=None, timeout=10.0):
        self.to = (sys.argv[1], int(sys.argv[2]))
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((local, 8805) if local else ("127.0.0.1", 0))
        self.s.settimeout(timeout)
        self.raws = []

    def send(self, msg):
        self.s.sendto(bytes(msg), self.to)

    def receive(self):
        data = self.s.recv(65535)
        self.raws.append(data)
        return PFCP(data)

    def ask(self, req):
        """Sends `req`, returns the answer as scapy decodes it."""
        self.send(req)
        return self.receive()

    def print_raws(self):
        for data in self.raws:
            say("raw", data.hex())

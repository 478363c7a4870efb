//! Targets over one frame or header: the input parser against etherparse,
//! nfv-net's header views, the tunnel headers (VXLAN, Geneve, GTP-U,
//! NSH). Each asserts what its parser promises, not only that it returns.

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nfv_core::packet::{Meta, flags};
use nfv_net::wire::{
    self, ArpPacket, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet, NshPacket, TcpPacket, UdpPacket,
};

/// The input parser (Ethernet, up to two VLAN tags, IPv4 with options
/// and fragments, IPv6 with extension headers, the L4 header's place):
/// offsets inside the frame, the flags meaning what they say, the flow
/// hash symmetric, and every frame etherparse reads whole read alike.
pub fn input(data: &[u8]) {
    let mut meta = Meta::default();
    if nfv_core::parse::classify(data, &mut meta).is_err() {
        assert!(data.len() < 14 + 8, "only a runt or a cut VLAN tag is refused ({} octets)", data.len());
        assert!(SlicedPacket::from_ethernet(data).is_err() || data.len() < 14, "etherparse read what we refused");
        return;
    }
    let (l3, l4) = (meta.l3_off as usize, meta.l4_off as usize);
    assert!((14..=22).contains(&l3) && l3 <= data.len(), "L3 offset {l3} in {} octets", data.len());
    if meta.flags & flags::L3_OK != 0 {
        match meta.ethertype {
            wire::ethertype::IPV4 => {
                // RFC 791: what we accept, a peer's parser accepts.
                let (h, _) = etherparse::Ipv4Header::from_slice(&data[l3..])
                    .unwrap_or_else(|e| panic!("L3_OK but etherparse: {e}"));
                assert!(h.total_len as usize <= data.len() - l3, "the packet is in the frame");
            }
            wire::ethertype::IPV6 => assert!(data.len() >= l3 + 40),
            other => panic!("L3_OK on ethertype {other:#06x}"),
        }
    }
    if meta.flags & flags::L4_OK != 0 {
        assert!(meta.flags & flags::L3_OK != 0, "L4 without L3");
        let min = match meta.l4_proto {
            wire::proto::TCP => 20,
            wire::proto::SCTP => 12,
            _ => 8,
        };
        assert!(l4 > l3 && l4 + min <= data.len(), "L4 at {l4}+{min} in {} octets", data.len());
    }
    let hash = nfv_core::parse::flow_hash(data, &meta);
    if let Some(swapped) = swapped(data, &meta) {
        let mut m = Meta::default();
        nfv_core::parse::classify(&swapped, &mut m).expect("the same frame, addresses swapped");
        assert_eq!(nfv_core::parse::flow_hash(&swapped, &m), hash, "the flow hash is symmetric");
    }
    // Differential: every frame etherparse reads to its transport header
    // we read to the same place.
    let Ok(p) = SlicedPacket::from_ethernet(data) else { return };
    // What nfv does not read as IP, on purpose: MACsec (IEEE 802.1AE: a
    // protected frame is for the MACsec entity, which nfv is not), and a
    // third VLAN tag (802.1ad's two are the most a frame carries here).
    let vlans_only = p.link_exts.iter().all(|e| matches!(e, etherparse::LinkExtSlice::Vlan(_)));
    if !vlans_only || p.link_exts.len() > 2 {
        return;
    }
    // An IPv6 payload length of 0 announces an RFC 2675 jumbogram (or is
    // Linux's BIG TCP as captured inside a host), bigger than any frame:
    // nfv refuses it as L3 before a hop-by-hop header, and reads no L4 in
    // it otherwise; etherparse takes the rest of the frame as payload.
    if let Some(NetSlice::Ipv6(ip)) = &p.net
        && ip.header().payload_length() == 0
    {
        return;
    }
    let theirs_l3 = match &p.net {
        Some(NetSlice::Ipv4(ip)) => Some(ip.header().slice().as_ptr() as usize - data.as_ptr() as usize),
        Some(NetSlice::Ipv6(ip)) => Some(ip.header().slice().as_ptr() as usize - data.as_ptr() as usize),
        _ => None,
    };
    if let Some(at) = theirs_l3 {
        assert!(meta.flags & flags::L3_OK != 0, "etherparse reads an IP header we do not");
        assert_eq!(at, l3, "the IP header's place");
    }
    let theirs_l4 = match &p.transport {
        Some(TransportSlice::Udp(u)) => Some(u.slice().as_ptr()),
        Some(TransportSlice::Tcp(t)) => Some(t.slice().as_ptr()),
        Some(TransportSlice::Icmpv4(i)) => Some(i.slice().as_ptr()),
        Some(TransportSlice::Icmpv6(i)) => Some(i.slice().as_ptr()),
        _ => None,
    };
    // IPv4's Authentication Header (RFC 4302) is, to nfv as to the Linux
    // IPv4 stack, the packet's protocol (51): etherparse reads through it
    // to the header after. (IPv6's AH is an extension header, RFC 8200
    // 4, and both skip it.)
    let ipv4_ah = matches!(&p.net, Some(NetSlice::Ipv4(ip)) if ip.extensions().auth.is_some());
    if let Some(at) = theirs_l4.filter(|_| !ipv4_ah) {
        assert!(meta.flags & flags::L4_OK != 0, "etherparse reads an L4 header we do not (proto {})", meta.l4_proto);
        assert_eq!(at as usize - data.as_ptr() as usize, l4, "the L4 header's place");
    }
}

/// The frame with its IP addresses and L4 ports exchanged (the reverse
/// direction of the same flow), when it has them.
fn swapped(data: &[u8], meta: &Meta) -> Option<Vec<u8>> {
    if meta.flags & flags::L3_OK == 0 {
        return None;
    }
    let mut d = data.to_vec();
    let l3 = meta.l3_off as usize;
    let (at, n) = if meta.ethertype == wire::ethertype::IPV4 { (l3 + 12, 4) } else { (l3 + 8, 16) };
    let (a, b) = d[at..at + 2 * n].split_at_mut(n);
    a.swap_with_slice(b);
    if meta.flags & flags::L4_OK != 0
        && matches!(meta.l4_proto, wire::proto::TCP | wire::proto::UDP | wire::proto::SCTP)
    {
        let l4 = meta.l4_off as usize;
        let (s, t) = wire::ports(&d[l4..]);
        wire::set_ports(&mut d[l4..], t, s);
    }
    Some(d)
}

/// nfv-net's views: `new_checked` refuses what does not fit, and what it
/// accepts every accessor reads without a panic, within the buffer.
pub fn wire(data: &[u8]) {
    if let Ok(e) = EthernetFrame::new_checked(data) {
        let _ = (e.dst_addr(), e.src_addr(), e.ethertype(), e.is_group(), e.vlan());
        assert!(e.payload().len() + 14 <= data.len());
    }
    if let Ok(ip) = Ipv4Packet::new_checked(data) {
        let h = ip.header_len();
        assert!((20..=60).contains(&h) && h <= data.len() && h <= ip.total_len() as usize);
        // The view may be of a packet cut short: its payload ends where
        // the total length says or where the data does.
        assert_eq!(ip.payload().len(), (ip.total_len() as usize).min(data.len()) - h, "the payload's end");
        let _ = (ip.tos(), ip.ident(), ip.ttl(), ip.protocol(), ip.src(), ip.dst(), ip.options(), ip.is_fragment());
        if let Err(e) = etherparse::Ipv4Header::from_slice(data) {
            panic!("a header we accept, etherparse refuses: {e}");
        }
        // RFC 1071 over the raw header (etherparse's own header checksum
        // re-serialises fields and loses the reserved flag bit).
        let sum = etherparse::checksum::Sum16BitWords::new().add_slice(&data[..h]).ones_complement();
        assert_eq!(ip.verify_checksum(), sum == 0, "the header checksum verifies as RFC 1071 says");
    }
    if let Ok(ip) = Ipv6Packet::new_checked(data) {
        assert!(ip.payload().len() <= data.len() - 40);
        let _ = (ip.traffic_class(), ip.flow_label(), ip.next_header(), ip.hop_limit(), ip.src_addr(), ip.dst_addr());
    }
    if let Ok(t) = TcpPacket::new_checked(data) {
        assert!(t.header_len() >= 20 && t.header_len() <= data.len());
        let _ = (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number(), t.flags(), t.window(), t.checksum());
    }
    if let Ok(u) = UdpPacket::new_checked(data) {
        assert!(u.payload().len() + 8 <= data.len());
        let _ = (u.src_port(), u.dst_port(), u.len(), u.checksum());
    }
    if let Ok(i) = IcmpPacket::new_checked(data) {
        let _ = (i.msg_type(), i.msg_code(), i.checksum(), i.try_echo_ident(), i.rest(), i.payload().len());
    }
    if let Ok(a) = ArpPacket::new_checked(data) {
        let _ = (a.operation(), a.sender_mac(), a.sender_ip(), a.target_mac(), a.target_ip());
    }
}

/// VXLAN (RFC 7348 5) and Geneve (RFC 8926 3) headers: the header's
/// length never past the data, Geneve's options adding up, control
/// messages and unknown critical options refused.
pub fn tunnel(data: &[u8]) {
    use nfv_vtep::wire::{HeaderError, Tunnel};
    if let Ok(h) = Tunnel::Vxlan.parse(data, |_, _| false) {
        assert_eq!(h.len, 8);
        assert!(data[0] & 0x08 != 0 && h.vni < 1 << 24);
    }
    for critical_known in [false, true] {
        match Tunnel::Geneve.parse(data, |_, _| critical_known) {
            Ok(h) => {
                assert!(h.len >= 8 && h.len <= data.len(), "{} of {}", h.len, data.len());
                assert_eq!(h.len, 8 + (data[0] & 0x3f) as usize * 4, "the option length says where the frame starts");
                assert!(data[1] & 0x80 == 0, "a control message forwarded");
                assert_eq!(data[2..4], [0x65, 0x58], "Ethernet inside (Transparent Ethernet Bridging)");
            }
            Err(HeaderError::UnknownCriticalOption) => assert!(!critical_known),
            Err(_) => {}
        }
    }
    if let Ok(n) = NshPacket::new_checked(data) {
        assert!(n.header_len() <= data.len() && n.header_len() >= 8);
        assert_eq!(n.payload().len(), data.len() - n.header_len());
        let _ = (n.version(), n.oam(), n.ttl(), n.md_type(), n.next_protocol(), n.spi(), n.si(), n.header());
        let tlv_octets: usize = n.tlvs().map(|t| 4 + t.value.len()).sum();
        assert!(tlv_octets <= n.context().len());
    }
}

/// GTP-U (TS 29.281 5.1, 5.2): the header and its extension headers end
/// inside the data and the payload is what the length field leaves.
pub fn gtpu(data: &[u8]) {
    if let Ok(h) = nfv_upf::gtpu::parse(data) {
        assert!(h.header_len >= 8 && h.header_len <= data.len(), "header {} of {}", h.header_len, data.len());
        let length = u16::from_be_bytes([data[2], data[3]]) as usize;
        assert_eq!(8 + length, h.header_len + h.payload_len, "length counts everything after 8 octets");
        assert!(h.header_len + h.payload_len <= data.len(), "the payload is in the data");
        assert_eq!(nfv_upf::gtpu::teid(data), Some(h.teid));
        if let Some((_, qfi)) = h.session {
            assert!(qfi < 64, "QFI is 6 bits");
        }
    }
    // An Echo Response (7.2.2) written over whatever was there reads back
    // as one, with the request's sequence number.
    let mut d = data.to_vec();
    if let Some(n) = nfv_upf::gtpu::echo_response(&mut d, data.len()) {
        let h = nfv_upf::gtpu::parse(&d[..n]).expect("an echo response is a GTP-U message");
        assert_eq!((h.msg_type, h.payload_len), (2, 2), "a Recovery IE and nothing else");
        let seq = (data.len() >= 12 && data[0] & 0x02 != 0).then(|| u16::from_be_bytes([data[8], data[9]]));
        assert_eq!(h.seq, Some(seq.unwrap_or(0)));
    }
}

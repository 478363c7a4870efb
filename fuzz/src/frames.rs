//! Frames out of fuzz input, and what the invariants say of frames: the
//! checksums a peer would verify, computed by etherparse (not by the code
//! under test), through VXLAN, Geneve and GTP-U to the inner packet.

use etherparse::{Icmpv4Header, Icmpv6Header, NetSlice, SlicedPacket, TransportSlice};
use nfv_core::frame::MAX_DATA;

/// One frame of a record stream: the port it arrives on, whether its
/// checksums are to be made right first, its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Arrival port (0 or 1).
    pub port: u16,
    /// Fix the frame's checksums before feeding it (most real traffic is
    /// well-formed; random bytes almost never are).
    pub fix: bool,
    /// Ticks the clock moves before this frame (timeouts, rate limits).
    pub advance: u8,
    /// The frame.
    pub data: Vec<u8>,
}

/// The longest frame fed: room left for the largest encapsulation.
pub const MAX_FRAME: usize = MAX_DATA - 128;

/// Splits `data` into records: a control octet (bit 0 the port, bit 1
/// fix checksums, bits 2-7 the clock's advance), a little-endian u16
/// length (cut to what is left), the frame. Whatever the input, the
/// records are well defined: the fuzzer explores frames, not the format.
pub fn records(mut data: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    while data.len() >= 3 && out.len() < 64 {
        let ctl = data[0];
        let len = (u16::from_le_bytes([data[1], data[2]]) as usize).min(data.len() - 3).min(MAX_FRAME);
        let mut frame = data[3..3 + len].to_vec();
        if ctl & 2 != 0 {
            fix_checksums(&mut frame);
        }
        out.push(Record { port: (ctl & 1) as u16, fix: ctl & 2 != 0, advance: ctl >> 2, data: frame });
        data = &data[3 + len..];
    }
    out
}

/// The inverse of [`records`], for seeds.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.push(r.port as u8 & 1 | u8::from(r.fix) << 1 | r.advance << 2);
        out.extend_from_slice(&(r.data.len() as u16).to_le_bytes());
        out.extend_from_slice(&r.data);
    }
    out
}

/// What a frame's headers say of its checksums.
#[derive(Debug, Default)]
struct Layout {
    /// IPv4 header: where its checksum field is, the right value, the value.
    ip4: Option<(usize, u16, u16)>,
    /// L4 checksum: where, the right value, the value. None when there is
    /// none to verify (a fragment, UDP over IPv4 without one, another
    /// protocol).
    l4: Option<(usize, u16, u16)>,
    /// A tunnelled packet inside: its range and whether it starts at L2.
    inner: Option<(usize, usize, bool)>,
}

fn offset(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

/// RFC 7348 (VXLAN, 4789 and Linux's 8472), RFC 8926 (Geneve, 6081):
/// Ethernet inside, to the end of the UDP payload; TS 29.281 (GTP-U,
/// 2152) G-PDUs: IP inside, as long as the GTP-U Length says. The inner
/// packet's range in the payload, and whether it starts at L2.
fn tunnelled(dport: u16, payload: &[u8]) -> Option<(usize, usize, bool)> {
    match dport {
        4789 | 8472 if payload.len() >= 8 + 14 && payload[0] & 0x08 != 0 => Some((8, payload.len(), true)),
        6081 if payload.len() >= 8 && payload[0] >> 6 == 0 && payload[2..4] == [0x65, 0x58] => {
            let len = 8 + (payload[0] & 0x3f) as usize * 4;
            (payload.len() >= len + 14).then_some((len, payload.len(), true))
        }
        2152 => {
            let h = nfv_upf::gtpu::parse(payload).ok()?;
            (h.msg_type == 255 && h.payload_len > 0).then_some((h.header_len, h.header_len + h.payload_len, false))
        }
        _ => None,
    }
}

fn layout(frame: &[u8], l2: bool) -> Result<Layout, String> {
    let p = if l2 { SlicedPacket::from_ethernet(frame) } else { SlicedPacket::from_ip(frame) };
    let p = p.map_err(|e| format!("etherparse refuses it: {e}"))?;
    let mut out = Layout::default();
    let (mut src4, mut dst4, mut src6, mut dst6) = (None, None, None, None);
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            // RFC 1071 over the raw header, the checksum field left out
            // (etherparse's `calc_header_checksum` re-serialises the header
            // and loses the reserved flag bit).
            let raw = h.slice();
            let want = etherparse::checksum::Sum16BitWords::new().add_slice(&raw[..10]).add_slice(&raw[12..]);
            out.ip4 = Some((offset(frame, raw) + 10, want.ones_complement().to_be(), h.header_checksum()));
            (src4, dst4) = (Some(h.source()), Some(h.destination()));
        }
        Some(NetSlice::Ipv6(ip)) => {
            (src6, dst6) = (Some(ip.header().source()), Some(ip.header().destination()));
        }
        _ => return Ok(out),
    }
    let sum =
        |calc4: &dyn Fn([u8; 4], [u8; 4]) -> Option<u16>, calc6: &dyn Fn([u8; 16], [u8; 16]) -> Option<u16>| match (
            src4, dst4, src6, dst6,
        ) {
            (Some(s), Some(d), _, _) => calc4(s, d),
            (_, _, Some(s), Some(d)) => calc6(s, d),
            _ => None,
        };
    match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            let want = sum(&|s, d| h.calc_checksum_ipv4_raw(s, d, u.payload()).ok(), &|s, d| {
                h.calc_checksum_ipv6_raw(s, d, u.payload()).ok()
            });
            // RFC 768: zero over IPv4 means no checksum.
            if let Some(want) = want.filter(|_| src6.is_some() || h.checksum != 0) {
                out.l4 = Some((offset(frame, u.slice()) + 6, want, h.checksum));
            }
            if let Some((start, end, l2)) = tunnelled(h.destination_port, u.payload()) {
                let at = offset(frame, u.payload());
                out.inner = Some((at + start, at + end, l2));
            }
        }
        Some(TransportSlice::Tcp(t)) => {
            let h = t.to_header();
            let want = sum(&|s, d| h.calc_checksum_ipv4_raw(s, d, t.payload()).ok(), &|s, d| {
                h.calc_checksum_ipv6_raw(s, d, t.payload()).ok()
            });
            if let Some(want) = want {
                out.l4 = Some((offset(frame, t.slice()) + 16, want, h.checksum));
            }
        }
        Some(TransportSlice::Icmpv4(i)) => {
            if let Ok((h, _)) = Icmpv4Header::from_slice(i.slice()) {
                out.l4 = Some((offset(frame, i.slice()) + 2, h.icmp_type.calc_checksum(i.payload()), h.checksum));
            }
        }
        Some(TransportSlice::Icmpv6(i)) => {
            if let (Ok((h, _)), Some(s), Some(d)) = (Icmpv6Header::from_slice(i.slice()), src6, dst6)
                && let Ok(want) = h.icmp_type.calc_checksum(s, d, i.payload())
            {
                out.l4 = Some((offset(frame, i.slice()) + 2, want, h.checksum));
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Makes every checksum of `frame` right (inner packets first: the outer
/// UDP checksum covers them); a frame etherparse cannot read is left.
pub fn fix_checksums(frame: &mut [u8]) {
    fix(frame, true, 0);
}

fn fix(frame: &mut [u8], l2: bool, depth: u8) {
    let Ok(l) = layout(frame, l2) else { return };
    if let Some((start, end, inner_l2)) = l.inner.filter(|_| depth < 2) {
        fix(&mut frame[start..end], inner_l2, depth + 1);
    }
    let Ok(l) = layout(frame, l2) else { return };
    if let Some((at, want, _)) = l.l4 {
        frame[at..at + 2].copy_from_slice(&want.to_be_bytes());
    }
    if let Some((at, want, _)) = l.ip4 {
        frame[at..at + 2].copy_from_slice(&want.to_be_bytes());
    }
}

/// `Ok` when a peer would accept every checksum of the frame (and of the
/// packet it tunnels), else what it would refuse.
pub fn checksums_verify(frame: &[u8]) -> Result<(), String> {
    verify(frame, true, 0)
}

fn verify(frame: &[u8], l2: bool, depth: u8) -> Result<(), String> {
    let l = layout(frame, l2)?;
    if let Some((_, want, have)) = l.ip4
        && want != have
    {
        return Err(format!("IPv4 header checksum {have:#06x}, should be {want:#06x} (depth {depth})"));
    }
    if let Some((_, want, have)) = l.l4
        && want != have
    {
        return Err(format!("L4 checksum {have:#06x}, should be {want:#06x} (depth {depth})"));
    }
    match l.inner.filter(|_| depth < 2) {
        Some((start, end, inner_l2)) => verify(&frame[start..end], inner_l2, depth + 1),
        None => Ok(()),
    }
}

/// `Ok` when the frame's IP packet (IPv4 or IPv6 after the Ethernet
/// header) is whole: its header well-formed by etherparse and its length
/// field within the frame. What a router may send, whatever it received.
pub fn ip_whole(frame: &[u8]) -> Result<(), String> {
    let Some(et) = frame.get(12..14) else { return Err("shorter than Ethernet".into()) };
    let l3 = &frame[14..];
    match [et[0], et[1]] {
        [0x08, 0x00] => {
            let (h, _) = etherparse::Ipv4Header::from_slice(l3).map_err(|e| format!("IPv4: {e}"))?;
            if h.total_len as usize > l3.len() {
                return Err(format!("IPv4 total length {} in {} octets", h.total_len, l3.len()));
            }
        }
        [0x86, 0xdd] => {
            let (h, _) = etherparse::Ipv6Header::from_slice(l3).map_err(|e| format!("IPv6: {e}"))?;
            if 40 + h.payload_length as usize > l3.len() {
                return Err(format!("IPv6 payload length {} in {} octets", h.payload_length, l3.len()));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp(dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, dport);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn records_round_trip_and_any_bytes_make_records() {
        let r = vec![
            Record { port: 1, fix: true, advance: 5, data: vec![1, 2, 3] },
            Record { port: 0, fix: false, advance: 0, data: vec![] },
        ];
        assert_eq!(records(&encode(&r)), r);
        assert_eq!(records(&[0xff, 0xff, 0xff, 9]).len(), 1, "a length past the end is cut");
        assert!(records(&[1, 2]).is_empty());
    }

    #[test]
    fn a_broken_checksum_is_found_and_fixed_inside_a_vxlan_tunnel() {
        let inner = udp(53, b"hello");
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 100, 0];
        vxlan.extend_from_slice(&inner);
        let mut f = udp(4789, &vxlan);
        assert_eq!(checksums_verify(&f), Ok(()));
        // No outer UDP checksum (RFC 7348 5: SHOULD be zero): only the
        // inner one covers the inner packet.
        f[40..42].copy_from_slice(&[0, 0]);
        let at = f.len() - 1;
        f[at] ^= 0xff;
        assert!(checksums_verify(&f).unwrap_err().contains("depth 1"), "the inner UDP checksum");
        fix_checksums(&mut f);
        assert_eq!(checksums_verify(&f), Ok(()));
        f[24] ^= 1;
        assert!(checksums_verify(&f).unwrap_err().contains("IPv4 header"));
    }
}

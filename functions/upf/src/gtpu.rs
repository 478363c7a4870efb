//! GTP-U headers (3GPP TS 29.281): reading a packet's header and its
//! extension headers, writing a G-PDU header for the downlink, answering
//! Echo Request.
//!
//! Header (section 5.1): flags (version 1, PT = 1, E, S, PN), message
//! type, length (of everything after the first 8 octets), TEID; when any
//! of E, S, PN is set, 4 more octets follow: sequence number, N-PDU
//! number, next extension header type. Extension headers (section 5.2):
//! a length in 4-octet units, contents, the next type. The PDU Session
//! Container (type 0x85, TS 38.415 section 5.5.2) carries the QoS flow
//! identifier (QFI) in the low 6 bits of its second octet, after the PDU
//! type (0 downlink, 1 uplink) in the first octet's high 4 bits.

/// The UDP port of GTP-U (TS 29.281 section 4.4.2).
pub const PORT: u16 = 2152;

/// Message types (TS 29.281 section 6.1).
pub mod msg {
    /// Echo Request.
    pub const ECHO_REQUEST: u8 = 1;
    /// Echo Response.
    pub const ECHO_RESPONSE: u8 = 2;
    /// Error Indication.
    pub const ERROR_INDICATION: u8 = 26;
    /// End Marker.
    pub const END_MARKER: u8 = 254;
    /// G-PDU: a user packet.
    pub const G_PDU: u8 = 255;
}

/// Extension header types (TS 29.281 section 5.2.1).
pub mod ext {
    /// No more extension headers.
    pub const NONE: u8 = 0x00;
    /// PDU Session Container (TS 38.415).
    pub const PDU_SESSION_CONTAINER: u8 = 0x85;
}

/// PDU Session Container PDU types (TS 38.415 section 5.5.3.1).
pub mod pdu_type {
    /// DL PDU SESSION INFORMATION.
    pub const DOWNLINK: u8 = 0;
    /// UL PDU SESSION INFORMATION.
    pub const UPLINK: u8 = 1;
}

/// Why a GTP-U header cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GtpuError {
    /// Shorter than its header, or its length field says more than there is.
    Truncated,
    /// Not version 1, or PT = 0 (GTP', TS 32.295).
    NotGtpuV1,
    /// An extension header of length 0, or running past the packet.
    BadExtension,
    /// An extension header the receiver must understand, unknown to us
    /// (TS 29.281 section 5.2.1: the two high bits of its type say 10 or 11).
    UnknownRequiredExtension,
}

/// A GTP-U header as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub msg_type: u8,
    /// Tunnel endpoint identifier.
    pub teid: u32,
    /// Sequence number, when S is set.
    pub seq: Option<u16>,
    /// (PDU type, QFI) of a PDU Session Container.
    pub session: Option<(u8, u8)>,
    /// Octets from the start of the header to the payload.
    pub header_len: usize,
    /// Octets of payload (the length field's count, less the optional
    /// fields and extension headers).
    pub payload_len: usize,
}

use nfv_net::be::rd16;

/// The TEID of the GTP-U header at the start of `d`, unchecked but for
/// its length (to prefetch a session before the header is parsed).
#[inline(always)]
pub fn teid(d: &[u8]) -> Option<u32> {
    d.get(4..8).map(|t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]))
}

/// Reads the GTP-U header at the start of `d` (the UDP payload).
pub fn parse(d: &[u8]) -> Result<Header, GtpuError> {
    if d.len() < 8 {
        return Err(GtpuError::Truncated);
    }
    let flags = d[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 {
        return Err(GtpuError::NotGtpuV1);
    }
    let msg_type = d[1];
    let length = rd16(d, 2) as usize;
    let teid = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    if d.len() < 8 + length {
        return Err(GtpuError::Truncated);
    }
    let mut h = Header { msg_type, teid, seq: None, session: None, header_len: 8, payload_len: length };
    if flags & 0x07 == 0 {
        return Ok(h);
    }
    if length < 4 {
        return Err(GtpuError::Truncated);
    }
    if flags & 0x02 != 0 {
        h.seq = Some(rd16(d, 8));
    }
    let mut next = if flags & 0x04 != 0 { d[11] } else { ext::NONE };
    let mut at = 12;
    while next != ext::NONE {
        let units = *d.get(at).ok_or(GtpuError::BadExtension)? as usize;
        let end = at + units * 4;
        if units == 0 || end > 8 + length {
            return Err(GtpuError::BadExtension);
        }
        match next {
            ext::PDU_SESSION_CONTAINER if units * 4 >= 4 => {
                h.session = Some((d[at + 1] >> 4, d[at + 2] & 0x3f));
            }
            // "Comprehension required" types the receiver does not know.
            t if t & 0x80 != 0 && t != ext::PDU_SESSION_CONTAINER => return Err(GtpuError::UnknownRequiredExtension),
            _ => {}
        }
        next = d[end - 1];
        at = end;
    }
    h.header_len = at;
    h.payload_len = 8 + length - at;
    Ok(h)
}

/// Octets of the G-PDU header [`write_gpdu`] writes: 8, or 16 with a PDU
/// Session Container.
pub const fn gpdu_header_len(with_session: bool) -> usize {
    if with_session { 16 } else { 8 }
}

/// Writes a G-PDU header for `payload_len` octets at the start of `d`:
/// TEID `teid` and, given a QFI, a PDU Session Container of PDU type
/// `pdu_type` (downlink from a UPF). Returns the header's length.
pub fn write_gpdu(d: &mut [u8], teid: u32, payload_len: usize, session: Option<(u8, u8)>) -> usize {
    let n = gpdu_header_len(session.is_some());
    d[0] = if session.is_some() { 0x34 } else { 0x30 };
    d[1] = msg::G_PDU;
    d[2..4].copy_from_slice(&((payload_len + n - 8) as u16).to_be_bytes());
    d[4..8].copy_from_slice(&teid.to_be_bytes());
    if let Some((pt, qfi)) = session {
        d[8..12].copy_from_slice(&[0, 0, 0, ext::PDU_SESSION_CONTAINER]);
        d[12..16].copy_from_slice(&[1, pt << 4, qfi & 0x3f, ext::NONE]);
    }
    n
}

/// Turns the Echo Request `d` (its GTP-U header at the start, `len`
/// octets) into its Echo Response in place (TS 29.281 section 7.2.2: the
/// request's sequence number, a Recovery IE with restart counter 0);
/// returns the response's length, or `None` if `d` cannot hold it.
pub fn echo_response(d: &mut [u8], len: usize) -> Option<usize> {
    let seq = if len >= 12 && d[0] & 0x02 != 0 { rd16(d, 8) } else { 0 };
    let out = 12 + 2;
    if d.len() < out {
        return None;
    }
    d[0] = 0x32; // version 1, PT, S
    d[1] = msg::ECHO_RESPONSE;
    d[2..4].copy_from_slice(&((out - 8) as u16).to_be_bytes());
    d[4..8].copy_from_slice(&[0; 4]);
    d[8..10].copy_from_slice(&seq.to_be_bytes());
    d[10] = 0;
    d[11] = 0;
    // Recovery (TS 29.281 section 8.2, TV, type 14): restart counter 0.
    d[12] = 14;
    d[13] = 0;
    Some(out)
}

/// The mandatory GTP-U header's length (TS 29.281 5.1).
pub const HEADER_LEN: usize = 8;

/// Writes, at the start of `d`, an End Marker (TS 29.281 7.3.2) for
/// tunnel `teid`: the mandatory header alone, no sequence number.
pub fn write_end_marker(d: &mut [u8], teid: u32) {
    d[0] = 0x30; // version 1, PT
    d[1] = msg::END_MARKER;
    d[2..4].copy_from_slice(&[0, 0]);
    d[4..8].copy_from_slice(&teid.to_be_bytes());
}

/// Writes, at the start of `d`, the Error Indication (TS 29.281 section
/// 7.3.1) for a G-PDU that arrived for `teid`, which we do not know, at
/// our address `ours`: TEID 0, Tunnel Endpoint Identifier Data I (8.3)
/// and GTP-U Peer Address (8.4) IEs. Returns its length, or `None` if `d`
/// cannot hold it.
pub fn error_indication(d: &mut [u8], teid: u32, ours: &[u8]) -> Option<usize> {
    let len = error_indication_len(ours);
    let d = d.get_mut(..len)?;
    d[0] = 0x32; // version 1, PT, S
    d[1] = msg::ERROR_INDICATION;
    d[2..4].copy_from_slice(&((len - 8) as u16).to_be_bytes());
    d[4..12].copy_from_slice(&[0; 8]);
    d[12] = 16;
    d[13..17].copy_from_slice(&teid.to_be_bytes());
    d[17] = 133;
    d[18..20].copy_from_slice(&(ours.len() as u16).to_be_bytes());
    d[20..].copy_from_slice(ours);
    Some(len)
}

/// The length of an Error Indication naming our address `ours` (4 or 16
/// octets).
pub fn error_indication_len(ours: &[u8]) -> usize {
    12 + 5 + 3 + ours.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // Built by scapy 2.5 (scapy.contrib.gtp), IP/UDP included: an uplink
    // G-PDU with a PDU Session Container (UL, QFI 9), a downlink one (DL,
    // QFI 5), an Echo Request (sequence 7), a G-PDU with a sequence number.
    const UL: &str = "4500004a000100004011668c0a0a00020a0a0001086808680036bd3934ff00260000123400000085011009004500001e000100004011465e0a2d0007c63364090fa00035000a532b6869";
    const DL: &str = "45000048000100004011668e0a0a00010a0a0002086808680034f32934ff00240000abcd00000085010005004500001c0001000040014670c63364090a2d00070800f7ff00000000";
    const ECHO: &str = "4500002800010000401166ae0a0a00020a0a0001086808680014a8d3320100040000000000070000";
    const SEQ: &str = "4500004600010000401166900a0a00020a0a0001086808680032c8d832ff002200001234010200004500001e000100004011465e0a2d0007c63364090fa00035000a532b6869";

    #[test]
    fn reads_scapys_headers() {
        let ul = unhex(UL);
        let h = parse(&ul[28..]).unwrap();
        assert_eq!(
            (h.msg_type, h.teid, h.seq, h.session),
            (msg::G_PDU, 0x1234, None, Some((pdu_type::UPLINK, 9))),
            "S = 0: no sequence number"
        );
        assert_eq!(h.header_len, 16);
        assert_eq!(&ul[28 + h.header_len..][..h.payload_len], &ul[44..], "the inner IPv4 packet");
        let dl = unhex(DL);
        let h = parse(&dl[28..]).unwrap();
        assert_eq!((h.teid, h.session), (0xabcd, Some((pdu_type::DOWNLINK, 5))));
        let echo = unhex(ECHO);
        let h = parse(&echo[28..]).unwrap();
        assert_eq!((h.msg_type, h.seq, h.payload_len), (msg::ECHO_REQUEST, Some(7), 0));
        let seq = unhex(SEQ);
        let h = parse(&seq[28..]).unwrap();
        assert_eq!((h.teid, h.seq, h.session, h.header_len), (0x1234, Some(0x0102), None, 12));
    }

    #[test]
    fn writes_what_scapy_writes() {
        let dl = unhex(DL);
        let mut hdr = [0u8; 16];
        let inner = dl.len() - 44;
        assert_eq!(write_gpdu(&mut hdr, 0xabcd, inner, Some((pdu_type::DOWNLINK, 5))), 16);
        assert_eq!(&hdr[..], &dl[28..44], "byte for byte");
        let mut plain = [0u8; 8];
        write_gpdu(&mut plain, 7, 100, None);
        assert_eq!(parse(&[&plain[..], &[0; 100]].concat()).unwrap().payload_len, 100);
    }

    #[test]
    fn answers_echo_with_the_sequence_number_and_a_recovery_ie() {
        let echo = unhex(ECHO);
        let mut d = echo[28..].to_vec();
        d.resize(32, 0);
        let n = echo_response(&mut d, echo.len() - 28).unwrap();
        let h = parse(&d[..n]).unwrap();
        assert_eq!((h.msg_type, h.seq, h.teid), (msg::ECHO_RESPONSE, Some(7), 0));
        assert_eq!(&d[12..14], &[14, 0], "Recovery, restart counter 0");
    }

    #[test]
    fn bad_headers_are_refused_never_read_past() {
        let ul = unhex(UL);
        let g = &ul[28..];
        assert_eq!(parse(&g[..7]), Err(GtpuError::Truncated));
        assert_eq!(parse(&g[..20]), Err(GtpuError::Truncated), "length says more");
        let mut v2 = g.to_vec();
        v2[0] = 0x54;
        assert_eq!(parse(&v2), Err(GtpuError::NotGtpuV1));
        let mut zero = g.to_vec();
        zero[12] = 0;
        assert_eq!(parse(&zero), Err(GtpuError::BadExtension));
        let mut long = g.to_vec();
        long[12] = 200;
        assert_eq!(parse(&long), Err(GtpuError::BadExtension));
        let mut unknown = g.to_vec();
        unknown[11] = 0xc0;
        assert_eq!(parse(&unknown), Err(GtpuError::UnknownRequiredExtension));
        // Every prefix and every single-byte corruption: an answer, no panic.
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..20_000 {
            let mut d = g.to_vec();
            let n = rng.usize(0..=d.len());
            d.truncate(n);
            if !d.is_empty() {
                let i = rng.usize(0..d.len());
                d[i] = rng.u8(..);
            }
            let _ = parse(&d);
        }
    }
}

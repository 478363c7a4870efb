//! Tunnel headers on the wire: VXLAN (RFC 7348 section 5) and Geneve
//! (RFC 8926 section 3). Parsing reads from fixed-size chunks and never
//! past the data; emitting writes into a slice the caller sized with
//! [`Tunnel::header_len`].

/// Ethernet frames inside Geneve: "Transparent Ethernet Bridging"
/// (RFC 8926 section 3.4, Protocol Type).
pub const ETHERTYPE_TEB: u16 = 0x6558;
/// VXLAN flags byte with only the I flag ("valid VNI") set (RFC 7348 section 5).
pub const VXLAN_FLAG_I: u8 = 0x08;
/// Geneve option type bit marking a critical option (RFC 8926 section 3.5.1).
pub const GENEVE_CRITICAL: u8 = 0x80;

/// Which tunnel a VTEP speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN, 8-byte header.
    Vxlan,
    /// Geneve, 8-byte header plus options.
    Geneve,
}

/// Why a tunnel header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Fewer bytes than the header claims.
    Truncated,
    /// VXLAN without the I flag.
    NoVniFlag,
    /// Geneve version other than 0.
    BadVersion,
    /// Geneve options that do not add up to the header's option length.
    BadOptionLength,
    /// A critical Geneve option this endpoint does not know.
    UnknownCriticalOption,
    /// Geneve payload other than Ethernet.
    NotEthernet,
    /// A Geneve control message (O bit): never forwarded to a tenant.
    Control,
}

/// A parsed tunnel header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Virtual network identifier (24 bits).
    pub vni: u32,
    /// Bytes from the start of the tunnel header to the inner frame.
    pub len: usize,
}

impl Tunnel {
    /// Bytes of the header this endpoint emits, with `options` bytes of
    /// Geneve options (ignored for VXLAN).
    pub fn header_len(self, options: usize) -> usize {
        match self {
            Tunnel::Vxlan => 8,
            Tunnel::Geneve => 8 + options,
        }
    }

    /// Parses the header at the start of `b` (the UDP payload).
    /// `known(class, type)` says whether a Geneve option is understood.
    #[inline]
    pub fn parse(self, b: &[u8], known: impl Fn(u16, u8) -> bool) -> Result<Header, HeaderError> {
        let h = b.first_chunk::<8>().ok_or(HeaderError::Truncated)?;
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        match self {
            // RFC 7348 section 5: flags, 24 reserved bits, VNI, 8 reserved
            // bits. Receivers ignore reserved bits; the I flag must be set.
            Tunnel::Vxlan => {
                if h[0] & VXLAN_FLAG_I == 0 {
                    return Err(HeaderError::NoVniFlag);
                }
                Ok(Header { vni, len: 8 })
            }
            // RFC 8926 section 3.4: Ver(2) OptLen(6) O C Rsvd(6) Protocol(16)
            // VNI(24) Rsvd(8), then OptLen * 4 bytes of options.
            Tunnel::Geneve => {
                if h[0] >> 6 != 0 {
                    return Err(HeaderError::BadVersion);
                }
                let opt_len = (h[0] & 0x3f) as usize * 4;
                let opts = b.get(8..8 + opt_len).ok_or(HeaderError::Truncated)?;
                check_options(opts, known)?;
                if u16::from_be_bytes([h[2], h[3]]) != ETHERTYPE_TEB {
                    return Err(HeaderError::NotEthernet);
                }
                // RFC 8926 section 3.4: endpoints MUST NOT forward the
                // payload of a control message (O bit).
                if h[1] & 0x80 != 0 {
                    return Err(HeaderError::Control);
                }
                Ok(Header { vni, len: 8 + opt_len })
            }
        }
    }

    /// Writes the header for `vni` into `out` (exactly `header_len`
    /// bytes), with `options` already encoded as Geneve TLVs.
    #[inline]
    pub fn emit(self, out: &mut [u8], vni: u32, options: &[u8]) {
        let v = vni.to_be_bytes();
        match self {
            Tunnel::Vxlan => {
                out[..8].copy_from_slice(&[VXLAN_FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]);
            }
            Tunnel::Geneve => {
                let critical = options_have_critical(options);
                let [p0, p1] = ETHERTYPE_TEB.to_be_bytes();
                out[..8].copy_from_slice(&[
                    (options.len() / 4) as u8,
                    if critical { 0x40 } else { 0 },
                    p0,
                    p1,
                    v[1],
                    v[2],
                    v[3],
                    0,
                ]);
                out[8..8 + options.len()].copy_from_slice(options);
            }
        }
    }
}

/// RFC 8926 section 3.5: each option is Class(16) Type(8) R(3) Length(5)
/// then Length * 4 bytes; together they fill the option length exactly.
/// An option we do not know is skipped unless its type has the critical
/// bit, in which case the packet must be dropped (section 3.5.1).
fn check_options(mut opts: &[u8], known: impl Fn(u16, u8) -> bool) -> Result<(), HeaderError> {
    while !opts.is_empty() {
        let o = opts.first_chunk::<4>().ok_or(HeaderError::BadOptionLength)?;
        let len = 4 + (o[3] & 0x1f) as usize * 4;
        if len > opts.len() {
            return Err(HeaderError::BadOptionLength);
        }
        let class = u16::from_be_bytes([o[0], o[1]]);
        if o[2] & GENEVE_CRITICAL != 0 && !known(class, o[2]) {
            return Err(HeaderError::UnknownCriticalOption);
        }
        opts = &opts[len..];
    }
    Ok(())
}

fn options_have_critical(mut opts: &[u8]) -> bool {
    while let Some(o) = opts.first_chunk::<4>() {
        if o[2] & GENEVE_CRITICAL != 0 {
            return true;
        }
        opts = opts.get(4 + (o[3] & 0x1f) as usize * 4..).unwrap_or_default();
    }
    false
}

/// Encodes one Geneve option (class, type, data padded to 4 bytes).
pub fn encode_option(out: &mut Vec<u8>, class: u16, kind: u8, data: &[u8]) {
    let words = data.len().div_ceil(4);
    out.extend_from_slice(&class.to_be_bytes());
    out.push(kind);
    out.push(words as u8 & 0x1f);
    out.extend_from_slice(data);
    out.resize(out.len() + words * 4 - data.len(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_round_trip_and_i_flag() {
        let mut h = [0u8; 8];
        Tunnel::Vxlan.emit(&mut h, 0xabcdef, &[]);
        assert_eq!(h, [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        assert_eq!(Tunnel::Vxlan.parse(&h, |_, _| false), Ok(Header { vni: 0xabcdef, len: 8 }));
        h[0] = 0;
        assert_eq!(Tunnel::Vxlan.parse(&h, |_, _| false), Err(HeaderError::NoVniFlag));
        assert_eq!(Tunnel::Vxlan.parse(&h[..7], |_, _| false), Err(HeaderError::Truncated));
    }

    #[test]
    fn geneve_options_are_checked_and_critical_ones_must_be_known() {
        let mut opts = Vec::new();
        encode_option(&mut opts, 0x0102, 0x01, &[1, 2, 3]); // 4 + 4 bytes
        encode_option(&mut opts, 0xffff, 0x80, &[]); // critical, 4 bytes
        assert_eq!(opts.len(), 12);
        let mut h = vec![0u8; 8 + opts.len()];
        Tunnel::Geneve.emit(&mut h, 42, &opts);
        assert_eq!(h[0], 3, "option length in 4-byte words");
        assert_eq!(h[1], 0x40, "C bit: a critical option is present");
        assert_eq!(Tunnel::Geneve.parse(&h, |c, t| c == 0xffff && t == 0x80), Ok(Header { vni: 42, len: 20 }));
        assert_eq!(Tunnel::Geneve.parse(&h, |_, _| false), Err(HeaderError::UnknownCriticalOption));
        // An option claiming more than the header holds.
        let mut bad = h.clone();
        bad[8 + 3] = 5;
        assert_eq!(Tunnel::Geneve.parse(&bad, |_, _| true), Err(HeaderError::BadOptionLength));
        // Option length beyond the packet.
        assert_eq!(Tunnel::Geneve.parse(&h[..12], |_, _| true), Err(HeaderError::Truncated));
        let mut v1 = h.clone();
        v1[0] |= 0x40;
        assert_eq!(Tunnel::Geneve.parse(&v1, |_, _| true), Err(HeaderError::BadVersion));
        let mut ip = h.clone();
        ip[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(Tunnel::Geneve.parse(&ip, |_, _| true), Err(HeaderError::NotEthernet));
        let mut oam = h;
        oam[1] |= 0x80;
        assert_eq!(Tunnel::Geneve.parse(&oam, |_, _| true), Err(HeaderError::Control));
    }
}

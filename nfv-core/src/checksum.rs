//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Stages that change one header field update the checksum in a few
//! instructions instead of recomputing it over the header or payload.

/// One's-complement sum of `data` as big-endian 16-bit words, unfolded.
#[inline]
pub fn sum(data: &[u8], mut acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add((*last as u32) << 8);
    }
    acc
}

/// Folds a 32-bit accumulator into 16 bits with end-around carry.
#[inline(always)]
pub fn fold(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum field value for `data` (RFC 1071): complement of the sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// RFC 1624 eqn. 3: new checksum after a 16-bit field goes from `old` to
/// `new`: HC' = ~(~HC + ~m + m').
#[inline(always)]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold((!csum as u32) + (!old as u32) + new as u32)
}

/// RFC 1624 update for a 32-bit field (an IPv4 address), as two words.
#[inline(always)]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = (!csum as u32) + (!(old >> 16) as u16 as u32) + (!(old as u16) as u32) + (new >> 16) + (new & 0xffff);
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut hdr = [0x45u8, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        // TTL 64 -> 63: the TTL/protocol word changes.
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] = 63;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let inc = update16(c, old, new);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&hdr));
        // Source address rewrite.
        hdr[10..12].copy_from_slice(&inc.to_be_bytes());
        let old_a = u32::from_be_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        let new_a: u32 = 0xc0a8_0101;
        hdr[12..16].copy_from_slice(&new_a.to_be_bytes());
        let inc2 = update32(inc, old_a, new_a);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc2, checksum(&hdr));
    }
}

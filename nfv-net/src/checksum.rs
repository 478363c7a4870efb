//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Stages that change one header field update the checksum in a few
//! instructions instead of recomputing it over the header or payload.

/// One's-complement sum of `data` as big-endian 16-bit words, added to
/// `acc` and returned partly folded (callers add more, then [`fold`]).
///
/// The bulk is summed eight bytes at a time in native byte order: the
/// one's-complement sum does not depend on byte order except for a final
/// byte swap (RFC 1071 section 2(B)), so no per-word swap is needed and
/// the loop vectorises. The two 32-bit halves of each word go into 64-bit
/// accumulators, which cannot overflow for any frame; the carries come
/// back in the fold ("deferred carries", RFC 1071 section 2(C)).
#[inline]
pub fn sum(data: &[u8], acc: u32) -> u32 {
    // Whole-packet sums (IPv6 UDP, ICMP quotes) run the same loop compiled
    // for AVX2 where the CPU has it: four 64-bit lanes per instruction.
    #[cfg(target_arch = "x86_64")]
    if data.len() >= 256 && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { sum_avx2(data, acc) };
    }
    sum_portable(data, acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_avx2(data: &[u8], acc: u32) -> u32 {
    sum_portable(data, acc)
}

#[inline(always)]
fn sum_portable(data: &[u8], acc: u32) -> u32 {
    let mut chunks = data.chunks_exact(8);
    let mut native = 0u64;
    for c in &mut chunks {
        let w = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
        native += (w & 0xffff_ffff) + (w >> 32);
    }
    let mut wide = acc as u64 + fold64(native).to_be() as u64;
    let mut pairs = chunks.remainder().chunks_exact(2);
    for c in &mut pairs {
        wide += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = pairs.remainder() {
        wide += (*last as u64) << 8;
    }
    // Leave headroom for callers adding a few more 16-bit words.
    fold64(wide) as u32
}

/// Folds a 64-bit one's-complement accumulator to 16 bits.
#[inline(always)]
fn fold64(mut a: u64) -> u16 {
    a = (a & 0xffff_ffff) + (a >> 32);
    a = (a & 0xffff_ffff) + (a >> 32);
    a = (a & 0xffff) + (a >> 16);
    a = (a & 0xffff) + (a >> 16);
    a as u16
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

/// RFC 1624 eqn. 3 is HC' = ~(~HC + ~m + m'): this is the `~m + m'` term
/// of a 16-bit field going from `old` to `new`. Terms of several fields add
/// up, so a rewrite of many fields folds once ([`adjust`]).
#[inline(always)]
pub fn delta16(old: u16, new: u16) -> u32 {
    (!old as u32) + new as u32
}

/// [`delta16`] for a 32-bit field (an IPv4 address), as two words.
#[inline(always)]
pub fn delta32(old: u32, new: u32) -> u32 {
    (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff)
}

/// The checksum `csum` after the changes summed in `delta` (at most a few
/// dozen terms: the sum fits in 32 bits).
#[inline(always)]
pub fn adjust(csum: u16, delta: u32) -> u16 {
    !fold((!csum as u32) + delta)
}

/// RFC 1624 eqn. 3: new checksum after a 16-bit field goes from `old` to
/// `new`.
#[inline(always)]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    adjust(csum, delta16(old, new))
}

/// RFC 1624 update for a 32-bit field (an IPv4 address), as two words.
#[inline(always)]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    adjust(csum, delta32(old, new))
}

/// Sum of the UDP pseudo-header (RFC 768; RFC 8200 section 8.1) of the IP
/// header at the start of `ip` (IPv4 or IPv6), for `udp_len` octets of UDP.
#[inline]
pub fn udp_pseudo_sum(ip: &[u8], v4: bool, udp_len: usize) -> u32 {
    let addrs = if v4 { &ip[12..20] } else { &ip[8..40] };
    sum(addrs, crate::wire::proto::UDP as u32 + udp_len as u32)
}

/// The UDP checksum of `udp` (header with its checksum field zero, and
/// payload) under the IP header at the start of `ip`; 0 is sent as 0xffff
/// (RFC 768).
#[inline]
pub fn udp_checksum(ip: &[u8], v4: bool, udp: &[u8]) -> u16 {
    match !fold(sum(udp, udp_pseudo_sum(ip, v4, udp.len()))) {
        0 => 0xffff,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UDP checksums over IPv4 and IPv6 as etherparse computes them.
    #[test]
    fn udp_checksums_agree_with_etherparse() {
        for v4 in [true, false] {
            let mut f = Vec::new();
            let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
            let b = if v4 { b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64) } else { b.ipv6([1; 16], [2; 16], 64) };
            b.udp(2152, 2152).write(&mut f, b"an odd-length payload").unwrap();
            let l4 = if v4 { 34 } else { 54 };
            let want = u16::from_be_bytes([f[l4 + 6], f[l4 + 7]]);
            f[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
            assert_eq!(udp_checksum(&f[14..l4], v4, &f[l4..]), want, "v4 {v4}");
        }
    }

    #[test]
    fn wide_sum_equals_the_plain_16_bit_sum() {
        let naive = |d: &[u8], acc: u32| {
            let mut a = acc as u64;
            for c in d.chunks(2) {
                a += (u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])) as u64;
            }
            while a > 0xffff {
                a = (a & 0xffff) + (a >> 16);
            }
            a as u16
        };
        let mut rng = 0x1234_5678u32;
        for len in 0..300 {
            let d: Vec<u8> = (0..len)
                .map(|_| {
                    rng = rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (rng >> 24) as u8
                })
                .collect();
            assert_eq!(fold(sum(&d, 0xfffe)), naive(&d, 0xfffe), "length {len}");
        }
        let ff = vec![0xffu8; 9000];
        assert_eq!(fold(sum(&ff, 0)), naive(&ff, 0));
    }

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

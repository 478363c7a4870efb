//! What the generator sends: frame sizes (RFC 2544 section 9.1's for
//! Ethernet, and IMIX mixes), flows varied as RFC 4814 asks (section 4.5:
//! pseudo-random source and destination ports rather than incrementing
//! ones, which hash unevenly), and the payload each frame carries so the
//! receiver can account for it: a magic, the flow, its sequence number
//! and the send time.

/// RFC 2544 section 9.1's Ethernet frame sizes (with the 4-octet FCS, as
/// the RFC counts them), the ones the kit measures.
pub const RFC2544_SIZES: [usize; 7] = [64, 128, 256, 512, 1024, 1280, 1518];

/// A frame-size mix: sizes (with FCS) and their weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    /// (size, weight).
    pub parts: Vec<(usize, u32)>,
    /// Its name in reports.
    pub name: &'static str,
}

impl Mix {
    /// One size.
    pub fn single(size: usize) -> Self {
        Self { parts: vec![(size, 1)], name: "fixed" }
    }

    /// The simple IMIX: 64, 570 and 1518 octets 7:4:1.
    pub fn imix_simple() -> Self {
        Self { parts: vec![(64, 7), (570, 4), (1518, 1)], name: "imix-7:4:1" }
    }

    /// FD.io CSIT's IMIX: 28 x 64, 16 x 570, 4 x 1518.
    pub fn imix_csit() -> Self {
        Self { parts: vec![(64, 28), (570, 16), (1518, 4)], name: "imix-csit" }
    }

    /// The sizes in sending order, one period of the mix (interleaved
    /// so that no size comes in a long run).
    pub fn sequence(&self) -> Vec<usize> {
        let total: u32 = self.parts.iter().map(|p| p.1).sum();
        let mut credit: Vec<i64> = vec![0; self.parts.len()];
        let mut out = Vec::with_capacity(total as usize);
        // Smooth weighted round robin (as nginx's upstream choice): even.
        for _ in 0..total {
            for (c, p) in credit.iter_mut().zip(&self.parts) {
                *c += p.1 as i64;
            }
            let (i, _) = credit.iter().enumerate().max_by_key(|(i, c)| (**c, usize::MAX - *i)).expect("parts");
            credit[i] -= total as i64;
            out.push(self.parts[i].0);
        }
        out
    }

    /// The mean size, for line-rate arithmetic.
    pub fn mean(&self) -> f64 {
        let total: u32 = self.parts.iter().map(|p| p.1).sum();
        self.parts.iter().map(|&(s, w)| (s * w as usize) as f64).sum::<f64>() / total as f64
    }
}

/// Packets per second that fill a link of `bits` per second with frames
/// of `size` octets (with FCS): each also takes 8 octets of preamble and
/// 12 of inter-frame gap on the wire.
pub fn line_rate(bits: f64, size: f64) -> f64 {
    bits / ((size + 20.0) * 8.0)
}

/// `n` flows' UDP ports, pseudo-random and distinct per flow (RFC 4814
/// section 4.5), from a seed (the same seed, the same flows: baselines and
/// nfv get the same traffic).
pub fn flow_ports(n: usize, seed: u64) -> Vec<(u16, u16)> {
    let mut rng = Xorshift(seed | 1);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        // RFC 4814 4.5: from 1024 up; 49152 and above left to ephemeral.
        let pick = |r: &mut Xorshift| 1024 + (r.next() % (49152 - 1024)) as u16;
        let p = (pick(&mut rng), pick(&mut rng));
        if seen.insert(p) {
            out.push(p);
        }
    }
    out
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The kit's payload at the start of each frame's UDP payload: a magic
/// (what is not ours is not counted), the flow, its sequence number, the
/// send time in nanoseconds; 16 octets, little-endian (a 64-octet frame
/// has 18 after its UDP header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The flow's index.
    pub flow: u16,
    /// Its packet number, from 0.
    pub seq: u32,
    /// When it was sent (ns, the process's clock).
    pub sent_ns: u64,
}

/// Octets a [`Stamp`] takes.
pub const STAMP_LEN: usize = 16;
const MAGIC: u16 = 0x666e; // "nf"

impl Stamp {
    /// Writes it at the start of `out` (at least [`STAMP_LEN`] octets).
    pub fn write(&self, out: &mut [u8]) {
        out[0..2].copy_from_slice(&MAGIC.to_le_bytes());
        out[2..4].copy_from_slice(&self.flow.to_le_bytes());
        out[4..8].copy_from_slice(&self.seq.to_le_bytes());
        out[8..16].copy_from_slice(&self.sent_ns.to_le_bytes());
    }

    /// Reads one from the start of `d`; `None` when it is not ours.
    pub fn read(d: &[u8]) -> Option<Self> {
        let d: &[u8; STAMP_LEN] = d.get(..STAMP_LEN)?.try_into().ok()?;
        let u16_at = |a: usize| u16::from_le_bytes([d[a], d[a + 1]]);
        let u32_at = |a: usize| u32::from_le_bytes([d[a], d[a + 1], d[a + 2], d[a + 3]]);
        if u16_at(0) != MAGIC {
            return None;
        }
        Some(Self { flow: u16_at(2), seq: u32_at(4), sent_ns: u64::from(u32_at(8)) | u64::from(u32_at(12)) << 32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_interleave_at_their_weights_and_line_rates_count_the_gap() {
        let s = Mix::imix_simple().sequence();
        assert_eq!(s.len(), 12);
        assert_eq!(s.iter().filter(|&&x| x == 64).count(), 7);
        assert_eq!(s.iter().filter(|&&x| x == 570).count(), 4);
        assert!(s.windows(3).all(|w| !(w[0] == 570 && w[1] == 570)), "no run of the middle size: {s:?}");
        assert_eq!(Mix::imix_csit().sequence().len(), 48);
        assert!((Mix::imix_simple().mean() - 353.83).abs() < 0.01);
        // 10 Gbit/s: 14.88 Mpps of 64-octet frames, 812.7 kpps of 1518.
        assert!((line_rate(10e9, 64.0) - 14_880_952.4).abs() < 1.0);
        assert!((line_rate(10e9, 1518.0) - 812_743.8).abs() < 1.0);
    }

    #[test]
    fn flows_are_distinct_pseudo_random_and_repeatable() {
        let f = flow_ports(1000, 7);
        assert_eq!(f, flow_ports(1000, 7));
        assert_ne!(f, flow_ports(1000, 8));
        let mut sorted = f.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        assert!(f.iter().all(|&(s, d)| (1024..49152).contains(&s) && (1024..49152).contains(&d)));
        assert!(f.windows(2).filter(|w| w[1].0 == w[0].0 + 1).count() < 5, "not incrementing");
    }

    #[test]
    fn stamps_round_trip_and_foreign_payloads_are_not_ours() {
        let s = Stamp { flow: 3, seq: 1 << 30, sent_ns: 123_456_789_000 };
        let mut b = [0u8; 64];
        s.write(&mut b);
        assert_eq!(Stamp::read(&b), Some(s));
        assert_eq!(Stamp::read(&b[..15]), None);
        b[0] ^= 1;
        assert_eq!(Stamp::read(&b), None);
    }
}

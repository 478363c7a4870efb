//! `macswap`: swaps the Ethernet source and destination addresses, so a
//! port reflects traffic back to its sender (DPDK testpmd's macswap mode).

use nfv_core::{Batch, Stage, StageCtx};

/// The macswap stage.
pub struct MacSwap;

impl Stage for MacSwap {
    fn process(&mut self, batch: &mut Batch, _ctx: &mut StageCtx<'_>) {
        for mut p in batch.iter_mut() {
            // The input stage dropped frames shorter than 14 bytes.
            let (dst, src) = p.data_mut()[..12].split_at_mut(6);
            dst.swap_with_slice(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use nfv_core::packet::VerdictKind;

    #[test]
    fn swaps_addresses_and_nothing_else() {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([1, 1, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut f, b"payload")
            .unwrap();
        let out = testutil::run(&mut MacSwap, std::slice::from_ref(&f));
        let eth = etherparse::Ethernet2Header::from_slice(&out[0].0).unwrap().0;
        assert_eq!((eth.source, eth.destination), ([2; 6], [1; 6]));
        assert_eq!(out[0].0[12..], f[12..]);
        assert_eq!(out[0].1, VerdictKind::Next);
    }
}

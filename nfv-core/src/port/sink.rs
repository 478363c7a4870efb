//! A port that counts what it is sent and frees it: the far end of the
//! in-memory benchmark, like DPDK's `net_null`.

use crate::batch::Batch;
use crate::frame::FramePool;
use crate::packet::PktDesc;
use crate::port::{Port, PortInfo};

/// The sink port.
pub struct Sink {
    info: PortInfo,
}

impl Sink {
    /// A sink with this identity.
    pub fn new(info: PortInfo) -> Self {
        Self { info }
    }
}

impl Port for Sink {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn rx_burst(&mut self, _pool: &mut FramePool, _batch: &mut Batch) -> usize {
        0
    }

    #[inline]
    fn tx_burst(&mut self, pool: &mut FramePool, pkts: &mut Vec<PktDesc>) {
        let mut bytes = 0u64;
        for d in pkts.iter() {
            bytes += d.len as u64;
            pool.free(d.frame);
        }
        self.info.counters.tx(pkts.len() as u64, bytes);
        pkts.clear();
    }

    fn exhausted(&self) -> bool {
        true
    }
}

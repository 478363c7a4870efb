// A packet's bytes cannot be held while the batch changes under them.
use nfv_core::frame::FramePool;
use nfv_core::{Batch, Meta};

fn main() {
    let mut pool = FramePool::heap(8);
    let mut batch = Batch::new(pool.arena().clone(), 8);
    batch.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
    let mut first = batch.iter_mut().next().unwrap();
    let bytes = first.data_mut();
    batch.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
    bytes[0] = 1;
}

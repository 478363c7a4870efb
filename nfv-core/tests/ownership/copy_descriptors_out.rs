// Descriptors cannot be copied out of a batch (to hand a port frames the
// batch still owns): they are neither Copy nor Clone.
use nfv_core::frame::FramePool;
use nfv_core::{Batch, Meta, PktDesc};

fn main() {
    let mut pool = FramePool::heap(8);
    let mut batch = Batch::new(pool.arena().clone(), 8);
    batch.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
    let copies: Vec<PktDesc> = batch.active().to_vec();
    drop(copies);
}

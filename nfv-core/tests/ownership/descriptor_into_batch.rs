// A descriptor read from a batch names a frame but cannot be pushed back:
// only owned packets enter a batch.
use nfv_core::frame::FramePool;
use nfv_core::{Batch, Meta};

fn main() {
    let mut pool = FramePool::heap(8);
    let mut batch = Batch::new(pool.arena().clone(), 8);
    batch.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
    let copy = batch.active()[0];
    batch.push(copy);
}

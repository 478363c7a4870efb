// A new packet owns its frame: it enters a batch once.
use nfv_core::frame::FramePool;
use nfv_core::{Batch, Meta};

fn main() {
    let mut pool = FramePool::heap(8);
    let mut batch = Batch::new(pool.arena().clone(), 8);
    let p = pool.packet_from(&[0; 60], Meta::default()).unwrap();
    batch.push(p);
    batch.push(p);
}

// Two mutable handles on the batch's packets cannot coexist across passes.
use nfv_core::frame::FramePool;
use nfv_core::{Batch, Meta};

fn main() {
    let mut pool = FramePool::heap(8);
    let mut batch = Batch::new(pool.arena().clone(), 8);
    batch.push(pool.packet_from(&[0; 60], Meta::default()).unwrap());
    let mut a = batch.iter_mut().next().unwrap();
    let mut b = batch.iter_mut().next().unwrap();
    a.data_mut()[0] = 1;
    b.data_mut()[0] = 2;
}

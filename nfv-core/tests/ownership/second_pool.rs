// Two pools over one arena would hand out each frame twice.
use nfv_core::frame::FramePool;

fn main() {
    let pool = FramePool::heap(8);
    let _twin = FramePool::new(pool.arena().clone());
}

// Frames are reached through what owns them, never by index.
use nfv_core::frame::FramePool;

fn main() {
    let mut pool = FramePool::heap(8);
    let frame = pool.frame_mut(0);
    frame[0] = 1;
}

// Descriptors are made by nfv-core alone: no frame index from thin air.
use nfv_core::PktDesc;

fn main() {
    let _ = PktDesc::new(0, 60, 0);
}

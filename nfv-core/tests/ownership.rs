//! Frame ownership is the compiler's business: safe code outside nfv-core
//! cannot push one frame twice, forge a descriptor, reach a frame by index,
//! build a second pool over an arena, or keep a packet's bytes while the
//! batch changes (`tests/ownership/*.rs` must fail to compile, each for
//! the reason its `.stderr` shows). What types cannot see, a packet from
//! another pool's arena, is refused at run time.

use nfv_core::adjacency::Adjacency;
use nfv_core::frame::FramePool;
use nfv_core::neighbour::Neighbours;
use nfv_core::packet::VerdictKind;
use nfv_core::{Batch, Meta};

#[test]
fn safe_code_cannot_alias_a_frame() {
    trybuild::TestCases::new().compile_fail("tests/ownership/*.rs");
}

#[test]
#[should_panic(expected = "another pool's arena")]
fn a_packet_from_another_pool_is_refused_by_a_batch() {
    let mut ours = FramePool::heap(8);
    let mut theirs = FramePool::heap(8);
    let mut batch = Batch::new(ours.arena().clone(), 8);
    batch.push(ours.packet_from(&[1; 60], Meta::default()).unwrap());
    batch.push(theirs.packet_from(&[2; 60], Meta::default()).unwrap());
}

#[test]
#[should_panic(expected = "did not come from")]
fn a_packet_given_back_to_another_pool_is_refused() {
    let mut ours = FramePool::heap(8);
    let mut theirs = FramePool::heap(8);
    let p = ours.packet_from(&[1; 60], Meta::default()).unwrap();
    theirs.discard(p);
}

#[test]
fn every_frame_comes_back_whatever_the_verdict() {
    let mut pool = FramePool::heap(8);
    let free = pool.available();
    let mut batch = Batch::new(pool.arena().clone(), 8);
    for i in 0..4u8 {
        batch.push(pool.packet_from(&[i; 60], Meta::default()).unwrap());
    }
    let extra = pool.packet_from(&[9; 60], Meta::default()).unwrap();
    assert_eq!(pool.available(), free - 5);
    pool.discard(extra);
    for (i, mut p) in batch.iter_mut().enumerate() {
        match i {
            0 => p.drop_with(nfv_core::DropReason(0)),
            1 => p.send_to(3),
            2 => p.punt(),
            _ => {}
        }
    }
    batch.settle(&mut [0; 4]);
    let mut seen = Vec::new();
    let mut adjacency = Adjacency::new(Neighbours::new([]), Default::default());
    batch.finish_into(&mut pool, &mut adjacency, |p| seen.push((p.verdict, p.data[0])));
    // Finished packets first; one given an egress went on with the rest.
    assert_eq!(
        seen,
        [
            (VerdictKind::Drop(nfv_core::DropReason(0)), 0),
            (VerdictKind::Punt, 2),
            (VerdictKind::Out(3), 1),
            (VerdictKind::Next, 3)
        ]
    );
    assert_eq!(pool.available(), free, "every frame back in the pool");
}

#[test]
fn a_packet_too_big_for_a_frame_is_refused_and_its_frame_kept() {
    let mut pool = FramePool::heap(8);
    let free = pool.available();
    assert!(pool.packet_from(&vec![0; nfv_core::frame::MAX_DATA + 1], Meta::default()).is_none());
    assert!(pool.build_packet(Meta::default(), |_| nfv_core::frame::MAX_DATA + 1).is_none());
    assert_eq!(pool.available(), free);
}

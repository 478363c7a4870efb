//! Big-endian fields of packet headers, read and written in place (the
//! stages' header code; a field past the slice's end panics, so callers
//! bound-check what the parser did not).

/// The 16-bit field at `at`.
#[inline(always)]
pub fn rd16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// The 32-bit field at `at`.
#[inline(always)]
pub fn rd32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Writes the 16-bit field at `at`.
#[inline(always)]
pub fn wr16(d: &mut [u8], at: usize, v: u16) {
    d[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Writes the 32-bit field at `at`.
#[inline(always)]
pub fn wr32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

//! Field ranges and big-endian access, the one place the views index bytes.

/// A fixed field: its octet range in the header.
pub type Field = std::ops::Range<usize>;
/// Everything from an offset on.
pub type Rest = std::ops::RangeFrom<usize>;

/// The 16-bit big-endian field `f`.
#[inline(always)]
pub fn rd16(d: &[u8], f: Field) -> u16 {
    u16::from_be_bytes(array(d, f))
}

/// The 32-bit big-endian field `f`.
#[inline(always)]
pub fn rd32(d: &[u8], f: Field) -> u32 {
    u32::from_be_bytes(array(d, f))
}

/// Writes the 16-bit big-endian field `f`.
#[inline(always)]
pub fn wr16(d: &mut [u8], f: Field, v: u16) {
    d[f].copy_from_slice(&v.to_be_bytes())
}

/// Writes the 32-bit big-endian field `f`.
#[inline(always)]
pub fn wr32(d: &mut [u8], f: Field, v: u32) {
    d[f].copy_from_slice(&v.to_be_bytes())
}

/// The 16-bit big-endian field `f`, if the buffer reaches its end.
#[inline(always)]
pub fn try_rd16(d: &[u8], f: Field) -> Option<u16> {
    d.get(f).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The field `f` as an array of its size.
#[inline(always)]
pub fn array<const N: usize>(d: &[u8], f: Field) -> [u8; N] {
    d[f].try_into().expect("field of its size")
}

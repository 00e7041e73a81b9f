//! Stable hashing: 64-bit FNV-1a, for names and keys that must come out the same on
//! every run, replica, version and platform (std's hashers promise none of that).
//!
//! FNV-1a is fixed by its specification (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`). It is not a cryptographic hash: use it to spread or name things,
//! never to authenticate them.
//!
//! ```
//! use idp_core::hash::{Fnv1a64, fnv1a64};
//! assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
//! let mut h = Fnv1a64::new();
//! h.write(b"a");
//! assert_eq!(h.finish(), fnv1a64(b"a"));
//! ```

/// The FNV-1a 64-bit offset basis.
const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV-1a 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A 64-bit FNV-1a hash fed in pieces.
///
/// ```
/// let mut h = idp_core::hash::Fnv1a64::new();
/// h.write(b"ab");
/// h.write(b"c");
/// assert_eq!(h.finish(), idp_core::hash::fnv1a64(b"abc"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a64 {
    /// A hash of nothing yet.
    ///
    /// ```
    /// assert_eq!(idp_core::hash::Fnv1a64::new().finish(), 0xcbf2_9ce4_8422_2325);
    /// ```
    pub fn new() -> Self {
        Self(OFFSET)
    }

    /// Feed `bytes`.
    ///
    /// ```
    /// let mut h = idp_core::hash::Fnv1a64::new();
    /// h.write(b"a");
    /// assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    /// ```
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// The hash of everything fed so far.
    ///
    /// ```
    /// assert_eq!(idp_core::hash::Fnv1a64::default().finish(), idp_core::hash::fnv1a64(b""));
    /// ```
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// The 64-bit FNV-1a hash of `bytes`.
///
/// ```
/// assert_eq!(idp_core::hash::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
/// ```
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}

//! Helpers of the crate's unit tests: generated inputs from a fixed seed.

/// A small deterministic generator (xorshift64*).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `bases` with one to three edits: one of `pieces` inserted, a byte deleted, or a
    /// byte replaced by one of `bytes`.
    pub(crate) fn mutate(&mut self, bases: &[&[u8]], pieces: &[&[u8]], bytes: &[u8]) -> Vec<u8> {
        let mut b = bases[self.below(bases.len())].to_vec();
        for _ in 0..1 + self.below(3) {
            let i = self.below(b.len() + 1);
            match self.below(3) {
                0 => {
                    let p = pieces[self.below(pieces.len())];
                    b.splice(i..i, p.iter().copied());
                }
                1 if i < b.len() => {
                    b.remove(i);
                }
                _ if i < b.len() => b[i] = bytes[self.below(bytes.len())],
                _ => {}
            }
        }
        b
    }
}

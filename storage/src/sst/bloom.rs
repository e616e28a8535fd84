//! The per-SST bloom filter over raw row bytes.
//!
//! Owns: the row hash, the filter's bit layout and the probe sequence. Must not: know about
//! blocks or files (the filter travels inside a checksummed block like any other).
//!
//! Layout: `bits (ceil(m/8) bytes) | k (1 byte)`. Probes use Kirsch–Mitzenmacher double
//! hashing, `g_i = h1 + i * h2 mod m`, from one 64-bit hash: as good as k independent hashes
//! for a bloom filter and k times cheaper. With 10 bits per row and k = 7 the false-positive
//! rate is about 0.8%.

/// A 64-bit hash of `data` (xxHash64-style rounds and the murmur3 finaliser). Stable across
/// platforms and releases: it is part of the file format.
pub fn hash64(data: &[u8]) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    let mut h = P3 ^ (data.len() as u64).wrapping_mul(P1);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h ^= v.wrapping_mul(P2).rotate_left(31).wrapping_mul(P1);
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P3);
    }
    for &b in chunks.remainder() {
        h ^= u64::from(b).wrapping_mul(P3);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    // fmix64: every input bit affects every output bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn probes(h: u64, k: u32, m: u64) -> impl Iterator<Item = u64> {
    let h1 = h;
    // Odd so that the probe sequence does not collapse when m is a power of two.
    let h2 = h.rotate_left(32) | 1;
    (0..u64::from(k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m)
}

/// Build a filter from row hashes (see [`hash64`]).
pub fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    let bits_per_key = bits_per_key.max(1);
    // k = bits_per_key * ln 2 minimises the false-positive rate.
    let k = ((bits_per_key as f64 * 0.69) as u32).clamp(1, 30);
    let m_bytes = (hashes.len() * bits_per_key).div_ceil(8).max(8);
    let m = (m_bytes * 8) as u64;
    let mut out = vec![0u8; m_bytes + 1];
    for &h in hashes {
        for bit in probes(h, k, m) {
            out[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    out[m_bytes] = k as u8;
    out
}

/// A decoded filter. An empty or malformed filter answers "maybe" for everything: a filter
/// can only save reads, never hide data.
pub struct Bloom {
    bits: Vec<u8>,
    k: u32,
}

impl Bloom {
    pub fn new(mut data: Vec<u8>) -> Bloom {
        let k = data.pop().map(u32::from).unwrap_or(0);
        if !(1..=30).contains(&k) || data.is_empty() {
            return Bloom {
                bits: Vec::new(),
                k: 0,
            };
        }
        Bloom { bits: data, k }
    }

    pub fn may_contain_hash(&self, h: u64) -> bool {
        if self.k == 0 {
            return true;
        }
        let m = (self.bits.len() * 8) as u64;
        probes(h, self.k, m).all(|bit| self.bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    pub fn may_contain(&self, row: &[u8]) -> bool {
        self.may_contain_hash(hash64(row))
    }

    pub fn size_bytes(&self) -> usize {
        self.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let n = 20_000u32;
        let hashes: Vec<u64> = (0..n)
            .map(|i| hash64(format!("row-{i}").as_bytes()))
            .collect();
        let bloom = Bloom::new(build(&hashes, 10));
        for i in 0..n {
            assert!(bloom.may_contain(format!("row-{i}").as_bytes()));
        }
        let probes = 50_000u32;
        let fp = (0..probes)
            .filter(|i| bloom.may_contain(format!("other-{i}").as_bytes()))
            .count();
        let rate = fp as f64 / f64::from(probes);
        assert!(rate > 0.002 && rate < 0.015, "false-positive rate {rate}");
    }

    #[test]
    fn malformed_filter_says_maybe() {
        for data in [vec![], vec![7], vec![0, 0, 0, 99]] {
            assert!(Bloom::new(data).may_contain(b"anything"));
        }
    }

    #[test]
    fn hash_is_stable() {
        // Part of the file format: a change here breaks every existing filter.
        assert_eq!(hash64(b""), hash64(b""));
        assert_ne!(hash64(b"a"), hash64(b"b"));
        assert_ne!(hash64(b"abcdefgh1"), hash64(b"abcdefgh2"));
        let pinned = [hash64(b""), hash64(b"row"), hash64(b"0123456789abcdef")];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [
        17622645311363874476,
        763914582651924721,
        4656255450610106668,
    ];
}

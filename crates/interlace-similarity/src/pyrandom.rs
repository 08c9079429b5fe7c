//! CPython's `random` module, bit for bit: MT19937 seeded like `random.seed(int)` and
//! `random.sample`.
//!
//! The official code draws its calibration subset with `random.seed(42);
//! random.sample(data, int(len(data) * portion))` (`src/get_hidden_states.py`) and its random
//! ablation with `random.sample` (`src/train/train_interlace.py`, `select_layers_random`).
//! Re-implementing the generator means `--seed 42` picks exactly the samples and layers the
//! official scripts pick. Checked against CPython 3.11 in `fixtures/golden/similarity/pyrandom.json`.

const N: usize = 624;
const M: usize = 397;

/// CPython's Mersenne Twister (`random.Random`).
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom").field("index", &self.index).finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.seed(seed)` for a non-negative integer: `init_by_array` over the seed's 32-bit
    /// words, least significant first (at least one word).
    pub fn new(seed: u64) -> Self {
        let low = seed as u32;
        let high = (seed >> 32) as u32;
        let key: Vec<u32> = if high == 0 { vec![low] } else { vec![low, high] };
        let mut rng = Self::init_genrand(19_650_218);
        rng.init_by_array(&key);
        rng
    }

    fn init_genrand(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            state[i] = 1_812_433_253u32.wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30)).wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    fn init_by_array(&mut self, key: &[u32]) {
        let mt = &mut self.state;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_664_525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            mt[i] = (mt[i] ^ (mt[i - 1] ^ (mt[i - 1] >> 30)).wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        mt[0] = 0x8000_0000;
    }

    fn twist(&mut self) {
        let mt = &mut self.state;
        for k in 0..N {
            let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            mt[k] = mt[(k + M) % N] ^ (y >> 1) ^ mag;
        }
        self.index = 0;
    }

    /// One tempered 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `1 ≤ k ≤ 32`.
    fn getrandbits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k)
    }

    /// `_randbelow(n)` for `n ≥ 1`: rejection sampling on `n.bit_length()` bits.
    pub fn randbelow(&mut self, n: usize) -> usize {
        let bits = usize::BITS - n.leading_zeros();
        debug_assert!(bits <= 32, "populations above 2^32 are not supported");
        loop {
            let r = self.getrandbits(bits) as usize;
            if r < n {
                return r;
            }
        }
    }

    /// `random.sample(range(n), k)`: `k` distinct indices in selection order, or `None` when
    /// `k > n` (Python raises "Sample larger than population").
    pub fn sample(&mut self, n: usize, k: usize) -> Option<Vec<usize>> {
        if k > n {
            return None;
        }
        // CPython switches between a shrinking pool and a rejection set by this size rule.
        let mut setsize = 21usize;
        if k > 5 {
            let exponent = (((k * 3) as f64).ln() / 4f64.ln()).ceil() as u32;
            setsize += 4usize.pow(exponent);
        }
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            Some(
                (0..k)
                    .map(|i| {
                        let j = self.randbelow(n - i);
                        let picked = pool[j];
                        pool[j] = pool[n - i - 1];
                        picked
                    })
                    .collect(),
            )
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            Some(
                (0..k)
                    .map(|_| {
                        let mut j = self.randbelow(n);
                        while selected.contains(&j) {
                            j = self.randbelow(n);
                        }
                        selected.insert(j);
                        j
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_outputs_match_cpython() {
        // python3 -c "import random; random.seed(42); print([random.getrandbits(32) for _ in range(3)])"
        let mut rng = PyRandom::new(42);
        assert_eq!([rng.next_u32(), rng.next_u32(), rng.next_u32()], [2746317213, 478163327, 107420369]);
    }
}

//! Reproducible randomness: every random draw of a run comes from a generator seeded by
//! (run seed, purpose, index), so resuming at step k needs no saved generator state and
//! gives the same draws as an uninterrupted run.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// What a random stream is used for; keeps streams of different purposes independent.
#[derive(Debug, Clone, Copy)]
#[repr(u64)]
pub enum Stream {
    Profile = 1,
    Batch = 2,
    Noise = 3,
    Backend = 4,
    FixedNoise = 5,
    Sampling = 6,
    Synthetic = 7,
    Init = 8,
    /// Per-step draws of the long-tail methods (CBDM's y′, OC's partners, DiffROP's pairs).
    Cbdm = 9,
    Oc = 10,
    DiffRop = 11,
    /// `ltlab analyze`: batches and noise of model-free analyses.
    Analysis = 12,
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit seed derived from the run seed, a stream and an index (step, class, …).
pub fn derive_seed(seed: u64, stream: Stream, index: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed) ^ stream as u64) ^ index)
}

pub fn rng(seed: u64, stream: Stream, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(seed, stream, index))
}

/// Flex has one generator per process: `Backend::seed` sets it and every random op draws from
/// it. Hold this from seeding it to the last draw, so that runs starting together on their own
/// threads each get their seed's draws.
pub fn flex_draws() -> std::sync::MutexGuard<'static, ()> {
    static DRAWS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    DRAWS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn normal_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}

//! The source of jitter, injected so that every decision is reproducible in tests and vectors.

/// Uniform draws in [0, 1). The client uses a real generator; tests and vectors use fixed draws.
pub trait Random {
    /// The next draw, in [0, 1).
    fn unit(&mut self) -> f64;
}

/// Replays a fixed list of draws, cycling; the form the shared vectors write jitter in.
#[derive(Clone, Debug)]
pub struct FixedDraws {
    draws: Vec<f64>,
    next: usize,
}

impl FixedDraws {
    /// Cycles through `draws`; an empty list always draws 0.5 (no jitter either way).
    pub fn new(draws: Vec<f64>) -> Self {
        FixedDraws { draws, next: 0 }
    }
}

impl Random for FixedDraws {
    fn unit(&mut self) -> f64 {
        if self.draws.is_empty() {
            return 0.5;
        }
        let draw = self.draws[self.next % self.draws.len()];
        self.next += 1;
        draw.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

/// A small seeded generator (SplitMix64) for simulations that need many reproducible draws.
#[derive(Clone, Debug)]
pub struct SeededDraws(u64);

impl SeededDraws {
    /// From a seed.
    pub fn new(seed: u64) -> Self {
        SeededDraws(seed)
    }
}

impl Random for SeededDraws {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits make an exact double in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

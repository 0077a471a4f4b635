//! The noise schedule, forward noising and the DDPM / DDIM samplers with guidance (SPEC §3).

pub mod sampler;
pub mod schedule;

pub use sampler::{SamplerKind, guided_eps, sample};
pub use schedule::Schedule;

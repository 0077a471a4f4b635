//! The engine host: what the front ends (the desktop lab, the headless commands, the web
//! server) share — opening runs and reading run directories, the background jobs (grids, latent
//! maps, entanglement, transfer), and starting runs from `ltlab train` options. It sits below
//! them: nothing here imports a front end.

pub mod jobs;
pub mod latents;
pub mod launch;
pub mod runs;

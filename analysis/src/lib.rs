//! The H→γγ analysis: ROOT file → events → selection → histogram → fit → result.
//!
//! Start with [`stage`]: the contract every analysis step implements, and [`stage::Reference`].
//!
//! * [`rootio`]: ROOT ntuples → typed columns (the only module that reads ROOT files);
//! * [`events`]: columns → the photon event model, in GeV, for both Open Data releases;
//! * [`select`]: events → selected diphotons (m_γγ, weight) and the cut flow;
//! * [`histogram`]: diphotons → a weighted m_γγ histogram;
//! * [`fit`]: histogram → signal + background fit, errors, significance;
//! * [`measure`]: fit + signal MC → ε×A, σ×B, μ;
//! * [`convert`]: ntuple → `.npy` columns;
//! * [`plot`]: result → PNG/SVG plots (bundled font, no system libraries);
//! * [`workflow`]: runs the stages over files, in parallel and deterministically;
//! * [`rng`]: the seeded random numbers of synthetic data and toys.

pub mod categorize;
pub mod classify;
pub mod convert;
pub mod events;
pub mod fit;
pub mod histogram;
pub mod measure;
#[cfg(feature = "plot")]
pub mod plot;
pub mod rng;
pub mod rootio;
pub mod rules;
pub mod select;
pub mod stage;
pub mod workflow;

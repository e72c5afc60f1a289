//! The H→γγ analysis: ROOT file → events → selection → histogram → fit → result.
//!
//! * [`rootio`]: ROOT ntuples → typed columns (the only module that reads ROOT files);
//! * [`events`]: columns → the photon event model, in GeV, for both Open Data releases;
//! * [`select`]: events → selected diphotons (m_γγ, weight) and the cut flow;
//! * [`histogram`]: diphotons → a weighted m_γγ histogram;
//! * [`fit`]: histogram → signal + background fit, errors, significance;
//! * [`rng`]: the seeded random numbers of synthetic data and toys.

pub mod events;
pub mod fit;
pub mod histogram;
pub mod rng;
pub mod rootio;
pub mod select;

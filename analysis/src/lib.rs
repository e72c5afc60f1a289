//! The H→γγ analysis: ROOT file → events → stage → histogram → fit → result.
//!
//! * [`rootio`]: ROOT ntuples → typed columns (the only module that reads ROOT files);
//! * [`events`]: columns → the photon event model, in GeV, for both Open Data releases.

pub mod events;
pub mod rootio;

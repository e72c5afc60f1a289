//! The benchmark's harness probe: a known-good stage built and run through the same
//! confinement as a cell's — no model code — says whether the harness works.

use agent::stage_crate::Toolchain;
use sandbox::Limits;

#[test]
fn the_probe_passes_on_a_working_harness_and_fails_on_a_broken_one() {
    let t = &Toolchain::default();
    t.prepare().expect("the stage toolchain is prepared");
    bench::probe(t, &Limits::default()).unwrap();
    // A sandbox whose runs cannot finish (a 1 ms wall-clock limit): the probe says so.
    let broken = Limits {
        wall_s: 1e-3,
        ..Limits::default()
    };
    let e = bench::probe(t, &broken).unwrap_err().to_string();
    assert!(e.contains("probe"), "{e}");
}

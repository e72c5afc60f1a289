//! Every fixture written by ROOT 6.40 reads back with ROOT's own numbers (`reference.json`):
//! entries, Σ photon_pt (in the file's units) and Σ photon_n, through both the raw columnar
//! reader and the GeV event model.

use analysis::events::{EventFile, Release};
use analysis::rootio::Ntuple;
use tests::{fixture, reference};

#[test]
fn every_fixture_matches_root() {
    let refs = reference();
    assert_eq!(refs.len(), 8, "reference.json lists the eight fixtures");
    for (name, r) in &refs {
        let path = fixture(name);
        let nt = Ntuple::open(&path, &Release::TREES).unwrap();
        assert_eq!(nt.tree_name(), r["tree"].as_str().unwrap(), "{name}: tree");
        assert_eq!(
            nt.entries(),
            r["entries"].as_u64().unwrap(),
            "{name}: entries"
        );

        let pt = nt.read_jagged::<f32>("photon_pt", 0..nt.entries()).unwrap();
        let sum_pt: f64 = pt.values.iter().map(|&v| v as f64).sum();
        let want_pt = r["sum_photon_pt"].as_f64().unwrap();
        assert!(
            ((sum_pt - want_pt) / want_pt).abs() < 1e-12,
            "{name}: sum photon_pt {sum_pt} != ROOT {want_pt}"
        );
        let n = nt.read_count("photon_n", 0..nt.entries()).unwrap();
        let sum_n: u64 = n.iter().map(|&v| v as u64).sum();
        assert_eq!(
            sum_n,
            r["sum_photon_n"].as_u64().unwrap(),
            "{name}: sum photon_n"
        );
        assert_eq!(pt.values.len() as u64, sum_n, "{name}: photon_pt length");
    }
}

#[test]
fn the_event_model_reads_both_releases_in_gev_over_any_chunking() {
    let refs = reference();
    for (name, r) in &refs {
        let file = EventFile::open(fixture(name)).unwrap();
        let want_release = if r["tree"] == "mini" {
            Release::Y2020
        } else {
            Release::Y2025
        };
        assert_eq!(file.release(), want_release, "{name}");
        let unit = file.release().units_per_gev() as f64;
        let want_pt_gev = r["sum_photon_pt"].as_f64().unwrap() / unit;
        // Whole file at once, and in small basket-aligned chunks: same photons either way.
        for target in [u64::MAX, 3000] {
            let mut sum_pt = 0.0;
            let mut n_events = 0;
            let mut n_photons = 0;
            for range in file.chunks(target).unwrap() {
                let ev = file.read(range).unwrap();
                n_events += ev.len() as u64;
                n_photons += ev.photons.pt.len() as u64;
                sum_pt += ev.photons.pt.iter().map(|&v| v as f64).sum::<f64>();
                assert_eq!(ev.mc.is_some(), file.release() == Release::Y2020, "{name}");
            }
            assert_eq!(n_events, r["entries"].as_u64().unwrap(), "{name}");
            assert_eq!(n_photons, r["sum_photon_n"].as_u64().unwrap(), "{name}");
            assert!(
                ((sum_pt - want_pt_gev) / want_pt_gev).abs() < 1e-6,
                "{name}: {sum_pt} GeV"
            );
        }
    }
}

/// The event loop reuses one batch's memory (its columns, and basket buffers that are not
/// zeroed before an inflate overwrites them) and inflates a branch's baskets in parallel, a
/// window at a time: batches read that way — larger and smaller ones in turn, files of
/// other compressions and basket sizes in between, on 1, 3 or 8 threads — equal fresh reads
/// on one thread.
#[test]
fn reused_buffers_and_parallel_baskets_read_what_a_fresh_read_does() {
    use analysis::events::{empty_events, ReadBuffers};
    let names = [
        "data_2020_zlib_smallbaskets.GamGam.root",
        "data_2025_zstd.GamGam.root",
        "mc_343981.ggH125_gamgam_2020_zlib.GamGam.root",
        "data_2020_lz4.GamGam.root",
    ];
    let files: Vec<EventFile> = names
        .iter()
        .map(|n| EventFile::open(fixture(n)).unwrap())
        .collect();
    let ranges = |n: u64| [0..n, n / 3..n / 3 + 7, 0..n / 2, n - 1..n, n / 4..n];
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let fresh: Vec<Vec<_>> = one.install(|| {
        files
            .iter()
            .map(|f| ranges(f.entries()).map(|r| f.read(r).unwrap()).to_vec())
            .collect()
    });
    for threads in [1, 3, 8] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut events = empty_events(files[0].release());
            let mut buffers = ReadBuffers::default();
            for round in 0..2 {
                for ((f, name), want) in files.iter().zip(names).zip(&fresh) {
                    for (r, want) in ranges(f.entries()).into_iter().zip(want) {
                        f.read_into(r.clone(), &mut events, &mut buffers).unwrap();
                        assert!(
                            events == *want,
                            "{name}, {threads} threads, round {round}, entries {r:?}"
                        );
                    }
                }
            }
        });
    }
}

/// A file given as data is read without MC weights, whatever branches it has (2020 data
/// files carry zero-filled `XSection`, `mcWeight`, …; an MC file passed as data weighs 1).
#[test]
fn a_file_read_as_data_has_no_mc_weights() {
    let mc = fixture("mc_343981.ggH125_gamgam_2020_zlib.GamGam.root");
    let f = EventFile::open(&mc).unwrap();
    assert!(f.read(0..10).unwrap().mc.is_some());
    assert!(f.branches_read().contains(&"XSection"));
    let f = f.as_data();
    assert!(f.read(0..10).unwrap().mc.is_none());
    assert!(!f.branches_read().contains(&"XSection"));
    assert!(f.branches_read().contains(&"photon_pt"));
}

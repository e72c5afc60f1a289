//! Damaged files never panic, abort, hang or allocate without bound; where the damage is
//! detectable (truncation always is) they give an error that names the file.
//!
//! Damage is made here from the fixtures: truncation at many offsets, and single flipped bytes
//! at many positions (a deterministic sequence), in a zlib 2020 file and a zstd 2025 file.

use analysis::events::EventFile;
use analysis::rootio::inspect;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Records the largest single allocation, to show damaged sizes never turn into huge ones.
struct Tracking;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
// SAFETY: every call is passed on to the system allocator unchanged; only a size is noted.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}
#[global_allocator]
static A: Tracking = Tracking;

/// Opens, inspects and reads a whole file; `Err` carries the message a user would see.
fn read_all(path: &Path) -> Result<(), String> {
    inspect(path).map_err(|e| e.to_string())?;
    let file = EventFile::open(path).map_err(|e| e.to_string())?;
    for range in file.chunks(5000).map_err(|e| e.to_string())? {
        file.read(range).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs `f` on another thread and fails the test if it takes longer than a minute.
fn within_a_minute(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("damaged-file reads finished (no hang, no panic)");
}

fn check_damage(fixture: &'static str) {
    let original = std::fs::read(tests::fixture(fixture)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(fixture);
    read_all(&tests::fixture(fixture)).expect("the undamaged fixture reads");

    // Truncation: always detectable, always an error naming the file.
    let len = original.len();
    let mut cuts: Vec<usize> = (0..60).map(|i| i * len / 60).collect();
    cuts.extend([
        1,
        4,
        63,
        64,
        100,
        300,
        1000,
        len - 1,
        len - 10,
        len - 100,
        len - 1000,
    ]);
    for cut in cuts {
        std::fs::write(&path, &original[..cut]).unwrap();
        let err =
            read_all(&path).expect_err(&format!("truncated at {cut} of {len} gives an error"));
        assert!(err.contains(fixture), "error names the file: {err}");
        assert!(
            !err.contains("internal parser failure"),
            "cut {cut}: a panic was caught: {err}"
        );
    }

    // Flipped bytes: no panic; count how many were detected.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let (mut detected, mut trials) = (0, 0);
    for _ in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pos = (x % len as u64) as usize;
        let mut damaged = original.clone();
        damaged[pos] ^= 0xFF;
        std::fs::write(&path, &damaged).unwrap();
        trials += 1;
        if let Err(err) = read_all(&path) {
            detected += 1;
            assert!(err.contains(fixture), "error names the file: {err}");
            assert!(
                !err.contains("internal parser failure"),
                "flip at {pos}: a panic was caught: {err}"
            );
        }
    }
    // Every byte of the file header (magic, version, pointers to keys and streamers).
    for pos in 0..100 {
        let mut damaged = original.clone();
        damaged[pos] ^= 0x5A;
        std::fs::write(&path, &damaged).unwrap();
        trials += 1;
        if let Err(err) = read_all(&path) {
            detected += 1;
            assert!(
                !err.contains("internal parser failure"),
                "header flip at {pos}: {err}"
            );
        }
    }
    eprintln!("{fixture}: {detected} of {trials} single-byte flips detected");

    // Two flipped bytes (often in two baskets of one branch, which inflate in parallel): the
    // error is the same on one thread and on eight — the first failure in basket order.
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let eight = rayon::ThreadPoolBuilder::new()
        .num_threads(8)
        .build()
        .unwrap();
    for _ in 0..60 {
        let mut damaged = original.clone();
        for _ in 0..2 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            damaged[(x % len as u64) as usize] ^= 0xFF;
        }
        std::fs::write(&path, &damaged).unwrap();
        let (a, b) = (
            one.install(|| read_all(&path)),
            eight.install(|| read_all(&path)),
        );
        assert_eq!(a, b, "one thread and eight threads differ");
    }
}

#[test]
fn files_that_are_not_root_files_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.root", vec![]),
        ("text.root", b"hello, not ROOT".repeat(50)),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let err = read_all(&p).unwrap_err();
        assert!(
            err.contains(name) && err.contains("not a ROOT file"),
            "{err}"
        );
    }
}

#[test]
fn damaged_files_give_errors_not_panics() {
    within_a_minute(|| {
        check_damage("data_2020_zlib.GamGam.root");
        check_damage("data_2025_zstd.GamGam.root");
    });
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < 64 << 20,
        "largest single allocation {largest} bytes"
    );
}

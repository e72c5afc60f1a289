//! Fuzz the ROOT reader: any bytes, as a file, through `inspect` and the event model. A panic
//! anywhere, or one caught by the reader's last-line guard, is a finding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fn check<T, E: std::fmt::Display>(r: Result<T, E>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains("internal parser failure"), "caught panic: {msg}");
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("hgg-fuzz-{}.root", std::process::id()));
    std::fs::write(&path, data).unwrap();
    check(analysis::rootio::inspect(&path));
    if let Some(f) = check(analysis::events::EventFile::open(&path)) {
        if let Some(chunks) = check(f.chunks(500)) {
            for r in chunks.into_iter().take(20) {
                check(f.read(r));
            }
        }
    }
});

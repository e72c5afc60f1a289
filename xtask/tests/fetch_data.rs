//! `fetch-data` against a local HTTP server on 127.0.0.1 (never the internet): downloads every
//! file, resumes a partial one with a `Range` request, skips what is already there, and rejects
//! a file that is not a ROOT file with the expected tree.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A tiny HTTP/1.1 file server with `Range: bytes=N-` support; logs each request's range.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut range = None;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            log2.lock().unwrap().push(format!("{path} {range:?}"));
            let name = path.trim_start_matches('/');
            let resp = match files.get(name) {
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
                Some(body) => match range {
                    Some(s) if s >= body.len() => format!(
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\n\r\n",
                        body.len()
                    )
                    .into_bytes(),
                    Some(s) => {
                        let mut r = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\n\r\n",
                            body.len() - s,
                            body.len() - 1,
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(&body[s..]);
                        r
                    }
                    None => {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                        r.extend_from_slice(body);
                        r
                    }
                },
            };
            let _ = stream.write_all(&resp);
            let _ = stream.flush();
            let _ = reader.read(&mut [0u8; 0]);
        }
    });
    (base, log)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn fetch(base: &str, out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["fetch-data", "--base-url", base, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn downloads_resumes_skips_and_checks() {
    let mut files = HashMap::new();
    for (period, fx) in [
        ("A", "data_2020_zlib"),
        ("B", "data_2020_lz4"),
        ("C", "data_2020_lzma"),
        ("D", "data_2020_zstd"),
    ] {
        files.insert(
            format!("Data/data_{period}.GamGam.root"),
            fixture(&format!("{fx}.GamGam.root")),
        );
    }
    let (base, log) = serve(files.clone());
    let dir = tempfile::tempdir().unwrap();
    // An interrupted earlier download of data_B: the first 100 kB are there.
    let b = &files["Data/data_B.GamGam.root"];
    std::fs::write(dir.path().join("data_B.GamGam.root.part"), &b[..100_000]).unwrap();

    let o = fetch(&base, dir.path());
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}\n{err}");
    for p in ["A", "B", "C", "D"] {
        let got = std::fs::read(dir.path().join(format!("data_{p}.GamGam.root"))).unwrap();
        assert_eq!(
            &got,
            &files[&format!("Data/data_{p}.GamGam.root")],
            "data_{p} is byte-identical"
        );
        assert!(!dir
            .path()
            .join(format!("data_{p}.GamGam.root.part"))
            .exists());
    }
    assert!(
        log.lock()
            .unwrap()
            .contains(&"/Data/data_B.GamGam.root Some(100000)".to_string()),
        "resumed with a Range request: {:?}",
        log.lock().unwrap()
    );
    assert!(out.contains("resumed"), "{out}");

    // Second run: everything is present and valid, nothing is requested.
    let before = log.lock().unwrap().len();
    let o = fetch(&base, dir.path());
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("already present"));
    assert_eq!(
        log.lock().unwrap().len(),
        before,
        "no requests for files already there"
    );
}

#[test]
fn a_file_that_is_not_root_is_rejected_and_a_missing_one_reported() {
    let mut files = HashMap::new();
    files.insert(
        "Data/data_A.GamGam.root".to_string(),
        b"<html>not found page</html>".repeat(100),
    );
    files.insert(
        "Data/data_B.GamGam.root".to_string(),
        fixture("data_2020_zlib.GamGam.root"),
    );
    // data_C and data_D are missing on the server (404).
    let (base, _) = serve(files);
    let dir = tempfile::tempdir().unwrap();
    let o = fetch(&base, dir.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("data_A.GamGam.root") && err.contains("failed its check"),
        "{err}"
    );
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !dir.path().join("data_A.GamGam.root").exists(),
        "a bad download is not kept as the file"
    );
    assert!(
        dir.path().join("data_B.GamGam.root").exists(),
        "good files still land"
    );
}

use stage_api::{Boundaries, Categorize, CategorizeInput, StageError};

pub struct Stage;

fn asimov(s: f64, b: f64) -> f64 {
    if s <= 0.0 || b <= 0.0 {
        return 0.0;
    }
    (2.0 * ((s + b) * (1.0 + s / b).ln() - s)).max(0.0).sqrt()
}

/// Combined Z of categories cut at `edges` (bin indices, with 0 and n), or None when one has
/// too little background.
fn total(s: &[f64], b: &[f64], edges: &[usize], min_b: f64) -> Option<f64> {
    let mut z2 = 0.0;
    for w in edges.windows(2) {
        let cs: f64 = s[w[0]..w[1]].iter().sum();
        let cb: f64 = b[w[0]..w[1]].iter().sum();
        if cb < min_b {
            return None;
        }
        z2 += asimov(cs, cb).powi(2);
    }
    Some(z2.sqrt())
}

impl Categorize for Stage {
    fn categorize(&self, input: &CategorizeInput) -> Result<Boundaries, StageError> {
        let (s, b) = (&input.signal, &input.background);
        let n = s.len();
        if n < 2 || b.len() != n || s.iter().chain(b.iter()).any(|x| !x.is_finite()) {
            return Err(StageError::from("inconsistent input"));
        }
        // Greedy: add the single edge that raises Z most, while it gains at least 1 %.
        let mut edges = vec![0, n];
        let mut z = total(s, b, &edges, input.min_background).unwrap_or(0.0);
        while edges.len() - 1 < input.max_categories {
            let mut best: Option<(f64, usize)> = None;
            for e in 1..n {
                if edges.contains(&e) {
                    continue;
                }
                let mut trial = edges.clone();
                trial.push(e);
                trial.sort_unstable();
                if let Some(zt) = total(s, b, &trial, input.min_background) {
                    if best.map_or(true, |(bz, _)| zt > bz) {
                        best = Some((zt, e));
                    }
                }
            }
            match best {
                Some((zt, e)) if zt >= z * 1.01 => {
                    edges.push(e);
                    edges.sort_unstable();
                    z = zt;
                }
                _ => break,
            }
        }
        let inner = &edges[1..edges.len() - 1];
        Ok(Boundaries {
            boundaries: inner.iter().map(|&e| e as f64 / n as f64).collect(),
        })
    }
}

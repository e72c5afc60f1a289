use stage_api::{Binning, Diphotons, Histogram, MakeHistogram, StageError};

pub struct Stage;

impl MakeHistogram for Stage {
    fn histogram(&self, d: &Diphotons, b: &Binning) -> Result<Histogram, StageError> {
        b.validate()?;
        if d.m_yy.len() != d.weight.len() {
            return Err(StageError::from("m_yy and weight differ in length"));
        }
        let mut h = Histogram {
            binning: b.clone(),
            sumw: vec![0.0; b.bins],
            sumw2: vec![0.0; b.bins],
            underflow: 0.0,
            overflow: 0.0,
            entries: 0,
        };
        for (&x, &w) in d.m_yy.iter().zip(&d.weight) {
            h.entries += 1;
            if x < b.lo {
                h.underflow += w;
            } else if !(x < b.hi) {
                h.overflow += w;
            } else {
                let i = ((b.bins as f64 * (x - b.lo) / (b.hi - b.lo)) as usize).min(b.bins - 1);
                h.sumw[i] += w;
                h.sumw2[i] += w * w;
            }
        }
        Ok(h)
    }
}

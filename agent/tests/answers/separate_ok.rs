// A correct separate stage, written from the task's instruction and the forust_ml notes
// (its own settings: 120 shallower trees, a lower learning rate).
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use stage_api::{Scores, SeparateInput, Separate, StageError};

pub struct Stage;

fn columns(rows: &[Vec<f64>], cols: usize) -> Vec<f64> {
    let n = rows.len();
    let mut v = vec![0.0; n * cols];
    for (i, r) in rows.iter().enumerate() {
        for j in 0..cols {
            v[j * n + i] = r[j];
        }
    }
    v
}

impl Separate for Stage {
    fn separate(&self, input: &SeparateInput) -> Result<Scores, StageError> {
        let cols = input.features.len();
        let t = &input.train;
        if t.x.len() != t.signal.len() || t.x.len() != t.weight.len() {
            return Err("as many labels and weights as training rows are needed".into());
        }
        if t.x.iter().chain(&input.test).any(|r| r.len() != cols) {
            return Err(format!("every row must have {cols} features").into());
        }
        if !t.signal.iter().any(|&s| s) || t.signal.iter().all(|&s| s) {
            return Err("need both signal and background to train".into());
        }
        let y: Vec<f64> = t.signal.iter().map(|&s| if s { 1.0 } else { 0.0 }).collect();
        let train = columns(&t.x, cols);
        let mut model = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(120)
            .set_learning_rate(0.08)
            .set_max_depth(4)
            .set_seed(input.seed)
            .set_parallel(false);
        model
            .fit(&Matrix::new(&train, t.x.len(), cols), &y, &t.weight, None)
            .map_err(|e| e.to_string())?;
        if input.test.is_empty() {
            return Ok(Scores { score: vec![] });
        }
        let test = columns(&input.test, cols);
        let score = model.predict(&Matrix::new(&test, input.test.len(), cols), false);
        Ok(Scores { score })
    }
}

//! Serde for `f64` that survives non-finite values: JSON has no NaN or ∞ and serde_json
//! writes them as `null`, which then fails to read back; here they are the strings `"NaN"`,
//! `"inf"` and `"-inf"`, and numbers stay numbers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Number(f64),
    Text(String),
}

fn to_repr(v: f64) -> Repr {
    if v.is_finite() {
        Repr::Number(v)
    } else if v.is_nan() {
        Repr::Text("NaN".into())
    } else if v > 0.0 {
        Repr::Text("inf".into())
    } else {
        Repr::Text("-inf".into())
    }
}

fn from_repr<E: serde::de::Error>(r: Repr) -> Result<f64, E> {
    match r {
        Repr::Number(v) => Ok(v),
        Repr::Text(t) => match t.as_str() {
            "NaN" => Ok(f64::NAN),
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(E::custom(format!("not a number: {other:?}"))),
        },
    }
}

/// Serialises an `f64`: a finite value as a number, NaN and ±∞ as `"NaN"`, `"inf"` and
/// `"-inf"`.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    to_repr(*v).serialize(s)
}
/// Deserialises an `f64` from a number or from one of the strings `"NaN"`, `"inf"` and
/// `"-inf"`; any other string is an error.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    from_repr(Repr::deserialize(d)?)
}

/// The same for `Option<f64>` (`null` is `None`).
pub mod option {
    use super::*;
    /// Serialises an `Option<f64>`: `None` as `null`, a value as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(to_repr).serialize(s)
    }
    /// Deserialises an `Option<f64>`: `null` as `None`, a value as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Repr>::deserialize(d)?.map(from_repr).transpose()
    }
}

/// The same for `Vec<f64>`.
pub mod vec {
    use super::*;
    /// Serialises a slice of `f64` as a list, each value as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|x| to_repr(*x))
            .collect::<Vec<_>>()
            .serialize(s)
    }
    /// Deserialises a list of `f64`, each value as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Vec::<Repr>::deserialize(d)?
            .into_iter()
            .map(from_repr)
            .collect()
    }
}

/// The same for `Vec<Vec<f64>>` (a covariance matrix).
pub mod vec2 {
    use super::*;
    /// Serialises rows of `f64` as a list of lists, each value as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|row| row.iter().map(|x| to_repr(*x)).collect::<Vec<_>>())
            .collect::<Vec<_>>()
            .serialize(s)
    }
    /// Deserialises a list of lists of `f64`, each value as [`super::deserialize`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Vec::<Vec<Repr>>::deserialize(d)?
            .into_iter()
            .map(|row| row.into_iter().map(from_repr).collect())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::fit::{FitModel, FitParam, FitResult, FitStatus};

    #[test]
    fn a_fit_with_non_finite_numbers_reads_back() {
        let f = FitResult {
            model: FitModel::default(),
            params: vec![FitParam {
                name: "nsig".into(),
                value: 1.5,
                error: f64::NAN,
            }],
            covariance: vec![vec![f64::INFINITY, 0.25]],
            nll: -3.0,
            edm: f64::INFINITY,
            status: FitStatus::Failed,
            q0: f64::NEG_INFINITY,
            z: f64::NAN,
        };
        let text = serde_json::to_string(&f).unwrap();
        let back: FitResult = serde_json::from_str(&text).unwrap();
        assert_eq!(back.edm, f64::INFINITY);
        assert_eq!(back.q0, f64::NEG_INFINITY);
        assert!(back.z.is_nan() && back.params[0].error.is_nan());
        assert_eq!(back.covariance, vec![vec![f64::INFINITY, 0.25]]);
        assert_eq!((back.nll, back.params[0].value), (-3.0, 1.5));
        // Finite numbers are plain JSON numbers, bit for bit.
        let x = 0.1 + 0.2;
        let p = FitParam {
            name: "x".into(),
            value: x,
            error: 1e-300,
        };
        let t = serde_json::to_string(&p).unwrap();
        assert!(t.contains("0.30000000000000004"), "{t}");
        assert_eq!(serde_json::from_str::<FitParam>(&t).unwrap(), p);
    }
}

//! The number format of the relation encoder's activations and matrix products.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Kind;

/// A name that is not one of the precisions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown precision `{0}`: expected one of fp32, bf16")]
pub struct UnknownPrecision(pub String);

/// How the relation encoder computes; written `fp32` or `bf16`.
///
/// `bf16` runs the relation encoder's activations and matrix products in bfloat16 (the
/// matrix units of recent CPUs and of GPUs), which is where nearly all of a step's work
/// lies when `I(X,A)` is in the objective. Its parameters, their gradients, the optimizer,
/// the BatchNorm statistics, the encoder, both critics and the losses stay in fp32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout (the default).
    #[default]
    Fp32,
    /// bfloat16 inside the relation encoder.
    Bf16,
}

impl Precision {
    /// Every precision, in the order the error messages list them.
    pub const ALL: [Precision; 2] = [Precision::Fp32, Precision::Bf16];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }

    /// The tensor kind the relation encoder computes in: `None` for the kind of its
    /// input (fp32 features in training).
    pub fn compute_kind(self) -> Option<Kind> {
        match self {
            Self::Fp32 => None,
            Self::Bf16 => Some(Kind::BFloat16),
        }
    }
}

impl FromStr for Precision {
    type Err = UnknownPrecision;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPrecision(s.to_string()))
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
        }
        let err = "fp16".parse::<Precision>().unwrap_err().to_string();
        assert!(
            err.contains("`fp16`") && err.contains("fp32, bf16"),
            "{err}"
        );
        assert_eq!(Precision::Bf16.compute_kind(), Some(Kind::BFloat16));
        assert_eq!(Precision::Fp32.compute_kind(), None);
        assert_eq!(Precision::default(), Precision::Fp32);
    }
}

//! The methods a run can train: the three bounds of the paper, and the two reference
//! points of its table (a supervised encoder and an untrained one).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::objective::Objective;

/// What a run trains (the `objective` field of a configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// I(X,Z) alone: the relational-reasoning baseline.
    Xz,
    /// I(X,A) alone.
    Xa,
    /// I(X,Z) + I(X,A): the paper's method.
    Xza,
    /// Encoder and linear head trained with labels (a reference point).
    Supervised,
    /// No training at all (a reference point).
    Random,
}

impl Method {
    /// Every method, in the order of the paper's table.
    pub const ALL: [Method; 5] = [
        Method::Supervised,
        Method::Random,
        Method::Xz,
        Method::Xa,
        Method::Xza,
    ];

    /// The self-supervised objective this method maximizes, if it is one.
    pub fn objective(self) -> Option<Objective> {
        match self {
            Method::Xz => Some(Objective::Xz),
            Method::Xa => Some(Objective::Xa),
            Method::Xza => Some(Objective::Xza),
            Method::Supervised | Method::Random => None,
        }
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "xz" => Ok(Method::Xz),
            "xa" => Ok(Method::Xa),
            "xza" => Ok(Method::Xza),
            "supervised" => Ok(Method::Supervised),
            "random" => Ok(Method::Random),
            other => Err(format!(
                "unknown objective `{other}`: expected xz, xa, xza, supervised or random"
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Method::Xz => "xz",
            Method::Xa => "xa",
            Method::Xza => "xza",
            Method::Supervised => "supervised",
            Method::Random => "random",
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for m in Method::ALL {
            assert_eq!(m.to_string().parse::<Method>().unwrap(), m);
        }
        let err = "xyz".parse::<Method>().unwrap_err();
        assert!(err.contains("xyz") && err.contains("supervised"), "{err}");
        assert_eq!(Method::Xza.objective(), Some(Objective::Xza));
        assert_eq!(Method::Random.objective(), None);
    }
}

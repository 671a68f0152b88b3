//! Which mutual-information terms the pretraining objective maximises.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A name that is not one of the objectives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown objective `{0}`: expected one of xz, xa, xza")]
pub struct UnknownObjective(pub String);

/// The terms of `I(X,Z,A) = I(X,Z) + I(X,A)` in use; written `xz`, `xa` or `xza`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// I(X,Z) alone, through the relation head: the relational-reasoning baseline.
    Xz,
    /// I(X,A) alone, through the relation encoder and the structure critic.
    Xa,
    /// Both terms, the method's objective (the default).
    #[default]
    Xza,
}

impl Objective {
    /// Every objective, in the order the error messages list them.
    pub const ALL: [Objective; 3] = [Self::Xz, Self::Xa, Self::Xza];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Xz => "xz",
            Self::Xa => "xa",
            Self::Xza => "xza",
        }
    }

    /// Whether the I(X,Z) term is part of the objective.
    pub fn uses_xz(self) -> bool {
        matches!(self, Self::Xz | Self::Xza)
    }

    /// Whether the I(X,A) term is part of the objective.
    pub fn uses_xa(self) -> bool {
        matches!(self, Self::Xa | Self::Xza)
    }
}

impl FromStr for Objective {
    type Err = UnknownObjective;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|objective| objective.name() == s)
            .ok_or_else(|| UnknownObjective(s.to_string()))
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_select_the_terms() {
        for objective in Objective::ALL {
            assert_eq!(objective.to_string().parse::<Objective>(), Ok(objective));
            let json = serde_json::to_string(&objective).unwrap();
            assert_eq!(json, format!("\"{objective}\""));
        }
        let used: Vec<_> = Objective::ALL
            .iter()
            .map(|o| (o.uses_xz(), o.uses_xa()))
            .collect();
        assert_eq!(used, vec![(true, false), (false, true), (true, true)]);
        let err = "xyz".parse::<Objective>().unwrap_err().to_string();
        assert!(
            err.contains("`xyz`") && err.contains("xz, xa, xza"),
            "{err}"
        );
    }
}

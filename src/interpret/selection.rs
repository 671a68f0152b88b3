//! Which images of a split to interpret: a seeded sample, or indices given by hand.

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::error::InterpretError;

/// `count` distinct indices below `len`, drawn with `seed` and returned in increasing
/// order; all of `0..len` when `count == len`.
pub fn sample_indices(
    len: usize,
    count: usize,
    seed: u64,
    split: &'static str,
) -> Result<Vec<usize>, InterpretError> {
    if count == 0 {
        return Err(InterpretError::InvalidSetting {
            field: "images",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    if count > len {
        return Err(InterpretError::TooManyImages {
            requested: count,
            len,
            split,
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut indices = sample(&mut rng, len, count).into_vec();
    indices.sort_unstable();
    Ok(indices)
}

/// Checks indices given by hand: each must be below `len`; the first that is not is named.
pub fn check_indices(
    indices: &[usize],
    len: usize,
    split: &'static str,
) -> Result<(), InterpretError> {
    if indices.is_empty() {
        return Err(InterpretError::Empty {
            what: "list of image indices",
        });
    }
    match indices.iter().find(|&&index| index >= len) {
        Some(&index) => Err(InterpretError::IndexOutOfRange { index, len, split }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_sorted_seeded_and_in_range() {
        let a = sample_indices(100, 10, 4, "test").unwrap();
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(a.iter().all(|&i| i < 100));
        assert_eq!(a, sample_indices(100, 10, 4, "test").unwrap());
        assert_ne!(a, sample_indices(100, 10, 5, "test").unwrap());
        assert_eq!(
            sample_indices(5, 5, 0, "test").unwrap(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn too_many_images_and_bad_indices_are_named() {
        let err = sample_indices(5, 6, 0, "test").unwrap_err().to_string();
        assert_eq!(err, "6 images asked for, but the test split holds only 5");
        assert!(sample_indices(5, 0, 0, "test").is_err());

        check_indices(&[0, 4], 5, "test").unwrap();
        let err = check_indices(&[1, 7, 9], 5, "test")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "image index 7 is out of range: the test split holds 5 images (valid indices 0..=4)"
        );
        assert!(check_indices(&[], 5, "test").is_err());
    }
}

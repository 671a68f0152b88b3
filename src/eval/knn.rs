//! k-nearest-neighbour accuracy of frozen features under cosine similarity: a second
//! measure of the features that, unlike the linear probe, involves no training.

use tch::{Device, Kind, Tensor};

use super::error::EvalError;
use super::inputs::{labelled, same_width};

/// The number of neighbours used unless told otherwise.
pub const DEFAULT_K: usize = 20;

/// Entries of the similarity matrix held at once (64 MiB of floats).
const SIMILARITY_BUDGET: i64 = 16 << 20;

/// Top-1 accuracy, in [0, 1], of a k-nearest-neighbour classifier: each test row of
/// `test_x` `[m, d]` takes the label most frequent among the `k` rows of `train_x` `[n, d]`
/// with the highest cosine similarity to it (a plain majority vote; among labels with
/// equal counts the smallest wins). Labels `[n]` / `[m]` must lie in `0..classes`; `k`
/// larger than `n` uses all `n`. Test rows go through in chunks so that at most
/// 16 Mi similarities are held at once.
pub fn knn_accuracy(
    train_x: &Tensor,
    train_y: &Tensor,
    test_x: &Tensor,
    test_y: &Tensor,
    classes: usize,
    k: usize,
) -> Result<f64, EvalError> {
    if k == 0 {
        return Err(EvalError::InvalidSetting {
            field: "k",
            value: "0".into(),
            expected: "at least 1 neighbour",
        });
    }
    let train = labelled("train features", train_x, "train labels", train_y, classes)?;
    let test = labelled("test features", test_x, "test labels", test_y, classes)?;
    same_width(&train, &test)?;

    let (n, m) = (train.x.size()[0], test.x.size()[0]);
    let k = (k as i64).min(n);
    let classes = classes as i64;
    let chunk = (SIMILARITY_BUDGET / n).max(1);
    let bank = unit_rows(&train.x).tr().contiguous();

    let correct = tch::no_grad(|| {
        let mut correct = 0i64;
        let mut start = 0;
        while start < m {
            let size = chunk.min(m - start);
            let similarity = unit_rows(&test.x.narrow(0, start, size)).matmul(&bank);
            let (_, nearest) = similarity.topk(k, 1, true, false);
            let neighbour_labels = train
                .y
                .index_select(0, &nearest.flatten(0, 1))
                .view([size, k]);

            // Votes per class; ties go to the smaller label by ranking
            // `votes * classes + (classes - 1 - label)`, whose maximum is unique.
            let votes = Tensor::zeros([size, classes], (Kind::Int64, Device::Cpu)).scatter_add(
                1,
                &neighbour_labels,
                &Tensor::ones([size, k], (Kind::Int64, Device::Cpu)),
            );
            let tie_break =
                Tensor::arange(classes, (Kind::Int64, Device::Cpu)).neg() + (classes - 1);
            let predicted = (votes * classes + tie_break).argmax(1, false);
            let hits = predicted.eq_tensor(&test.y.narrow(0, start, size));
            correct += hits.sum(Kind::Int64).int64_value(&[]);
            start += size;
        }
        correct
    });
    Ok(correct as f64 / m as f64)
}

/// Rows scaled to unit length (a zero row stays zero): `[n, d] -> [n, d]`.
fn unit_rows(x: &Tensor) -> Tensor {
    let norms = x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12);
    x / norms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f32], width: i64) -> Tensor {
        Tensor::from_slice(values).view([-1, width])
    }

    fn labels(values: &[i64]) -> Tensor {
        Tensor::from_slice(values)
    }

    /// Training points on the unit circle at 0, 10, 20, 90, 100 and 180 degrees (scaled to
    /// show that only directions count), labelled 0, 0, 1, 1, 1, 2.
    fn circle() -> (Tensor, Tensor) {
        let points: Vec<f32> = [0.0f32, 10.0, 20.0, 90.0, 100.0, 180.0]
            .iter()
            .enumerate()
            .flat_map(|(i, deg)| {
                let r = (i + 1) as f32;
                let a = deg.to_radians();
                [r * a.cos(), r * a.sin()]
            })
            .collect();
        (rows(&points, 2), labels(&[0, 0, 1, 1, 1, 2]))
    }

    #[test]
    fn a_hand_checked_case() {
        let (x, y) = circle();
        // Test points at 5 degrees (neighbours 0, 10, 20: labels 0, 0, 1 -> 0),
        // 95 degrees (90, 100, then 20 at 75 degrees: labels 1, 1, 1 -> 1),
        // 175 degrees (180, 100, 90: labels 2, 1, 1 -> 1).
        let test: Vec<f32> = [5.0f32, 95.0, 175.0]
            .iter()
            .flat_map(|d| [d.to_radians().cos(), d.to_radians().sin()])
            .collect();
        let test = rows(&test, 2);
        let truth = labels(&[0, 1, 1]);
        assert_eq!(knn_accuracy(&x, &y, &test, &truth, 3, 3).unwrap(), 1.0);
        // With k = 1 the point at 175 degrees takes the label of 180 degrees: 2.
        assert!((knn_accuracy(&x, &y, &test, &truth, 3, 1).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let want_two = labels(&[0, 1, 2]);
        assert_eq!(knn_accuracy(&x, &y, &test, &want_two, 3, 1).unwrap(), 1.0);
    }

    #[test]
    fn ties_go_to_the_smaller_label() {
        // Two neighbours, one of each label: the vote is tied, label 0 wins either way round.
        let x = rows(&[1.0, 0.0, 0.0, 1.0], 2);
        let test = rows(&[1.0, 1.0], 2);
        for y in [labels(&[0, 1]), labels(&[1, 0])] {
            assert_eq!(
                knn_accuracy(&x, &y, &test, &labels(&[0]), 2, 2).unwrap(),
                1.0
            );
            assert_eq!(
                knn_accuracy(&x, &y, &test, &labels(&[1]), 2, 2).unwrap(),
                0.0
            );
        }
    }

    #[test]
    fn k_above_the_training_size_votes_over_all_of_it() {
        let (x, y) = circle();
        let test = rows(&[0.0, 1.0], 2);
        // All six vote: label 1 has three votes.
        assert_eq!(
            knn_accuracy(&x, &y, &test, &labels(&[1]), 3, 50).unwrap(),
            1.0
        );
    }

    #[test]
    fn chunking_does_not_change_the_answer() {
        tch::manual_seed(5);
        let opts = (Kind::Float, Device::Cpu);
        let train_x = Tensor::randn([300, 8], opts);
        let train_y = Tensor::randint(4, [300], (Kind::Int64, Device::Cpu));
        let test_x = Tensor::randn([70, 8], opts);
        let test_y = Tensor::randint(4, [70], (Kind::Int64, Device::Cpu));
        let whole = knn_accuracy(&train_x, &train_y, &test_x, &test_y, 4, 5).unwrap();
        let mut parts = 0.0;
        for start in (0..70).step_by(10) {
            let (tx, ty) = (test_x.narrow(0, start, 10), test_y.narrow(0, start, 10));
            parts += knn_accuracy(&train_x, &train_y, &tx, &ty, 4, 5).unwrap() * 10.0;
        }
        assert!((whole * 70.0 - parts).abs() < 1e-9, "{whole} vs {parts}");
    }

    #[test]
    fn bad_inputs_are_named() {
        let (x, y) = circle();
        let e = knn_accuracy(&x, &y, &x, &y, 3, 0).unwrap_err().to_string();
        assert!(e.contains("`k`"), "{e}");
        let e = knn_accuracy(&x, &y, &x, &y, 2, 3).unwrap_err().to_string();
        assert!(e.contains("label 2"), "{e}");
    }
}

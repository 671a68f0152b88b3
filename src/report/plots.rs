//! PNG pictures of the runs: the surrogate-accuracy curves of the paper's Figure 3 (one
//! picture per backbone) and, for each run, its loss and bounds against steps.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary, so no system font is needed.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::report::error::ReportError;
use crate::report::runs::{Backbone, Method, Run, RunSet};

/// Width and height of every picture, in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 600);
/// Steps averaged by the moving average of the loss and bound curves.
pub const SMOOTHING_WINDOW: usize = 20;

const FONT: &str = "sans-serif";

/// Makes the embedded font known to the drawing library; safe to call many times.
pub fn register_fonts() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let regular = register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok();
        let bold = register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok();
        regular && bold
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font {
            family: "DejaVu Sans".into(),
        })
    }
}

/// The trailing moving average: entry `i` is the mean of `values[i + 1 - w ..= i]`, with
/// `w = min(window, i + 1)`; same length as `values`. A window of 0 acts as 1.
pub fn moving_average(values: &[f64], window: usize) -> Vec<f64> {
    let window = window.max(1);
    let mut sum = 0.0;
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= values[i - window];
        }
        out.push(sum / (i + 1).min(window) as f64);
    }
    out
}

/// The mean surrogate accuracy of one method over its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SurrogateCurve {
    /// `(step, accuracy in percent)`, by step: at each step, the mean over the runs that
    /// measured it.
    pub points: Vec<(u64, f64)>,
    /// Number of runs with at least one measurement.
    pub runs: usize,
}

/// The mean surrogate accuracy curve of each method among `runs`. Methods without any
/// measurement are absent.
pub fn surrogate_curves(runs: &[&Run]) -> BTreeMap<Method, SurrogateCurve> {
    // Per method: (sum of accuracies and count, per step), runs with measurements.
    type Sums = (BTreeMap<u64, (f64, usize)>, usize);
    let mut sums: BTreeMap<Method, Sums> = BTreeMap::new();
    for run in runs {
        let points = run.surrogate_points();
        if points.is_empty() {
            continue;
        }
        let (steps, count) = sums.entry(run.config.objective).or_default();
        *count += 1;
        for (step, accuracy) in points {
            let entry = steps.entry(step).or_default();
            entry.0 += 100.0 * accuracy;
            entry.1 += 1;
        }
    }
    sums.into_iter()
        .map(|(method, (steps, runs))| {
            let points = steps
                .into_iter()
                .map(|(s, (sum, n))| (s, sum / n as f64))
                .collect();
            (method, SurrogateCurve { points, runs })
        })
        .collect()
}

fn method_color(method: Method) -> RGBColor {
    match method {
        Method::Supervised => RGBColor(40, 40, 40),
        Method::Random => RGBColor(140, 140, 140),
        Method::Xz => RGBColor(31, 119, 180),
        Method::Xa => RGBColor(255, 127, 14),
        Method::Xza => RGBColor(214, 39, 40),
    }
}

fn plot_error(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |message| ReportError::Plot {
        path: path.to_path_buf(),
        message,
    }
}

/// A padded range around the finite values in `values`; `fallback` when there are none.
fn padded_range(values: impl Iterator<Item = f64>, fallback: Range<f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return fallback;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1.0)
    };
    (lo - pad)..(hi + pad)
}

/// Decimals enough for ticks a twentieth of `range` apart (finer than the library's).
fn tick_decimals(range: &Range<f64>) -> usize {
    let step = (range.end - range.start).abs() / 20.0;
    if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        1
    }
}

/// A tick label with at most `decimals` decimals, no trailing zeros and no `-0`.
fn tick_label(value: f64, decimals: usize) -> String {
    let scale = 10f64.powi(decimals as i32);
    let rounded = (value * scale).round() / scale + 0.0;
    let text = format!("{rounded:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Where the legend hides the least: below when the curves end in the upper half of `y`.
fn legend_position<'a, X: 'a>(
    curves: impl Iterator<Item = &'a [(X, f64)]>,
    y: &Range<f64>,
) -> SeriesLabelPosition {
    let ends: Vec<f64> = curves
        .flat_map(|c| c[c.len() - c.len().div_ceil(10)..].iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    let mean = ends.iter().sum::<f64>() / ends.len().max(1) as f64;
    if mean > 0.5 * (y.start + y.end) {
        SeriesLabelPosition::LowerRight
    } else {
        SeriesLabelPosition::UpperRight
    }
}

/// The steps from the first to the last, widened by one on each side when they are one.
fn step_range(steps: impl Iterator<Item = i64>) -> Range<i64> {
    let (lo, hi) = steps.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
    if lo > hi {
        0..1
    } else if lo == hi {
        (lo - 1).max(0)..hi + 1
    } else {
        lo..hi
    }
}

/// Draws the surrogate curves of one backbone into `path`: accuracy (%) against steps,
/// one line per method. Does nothing and returns `false` when `curves` is empty.
pub fn draw_surrogate(
    path: &Path,
    title: &str,
    curves: &BTreeMap<Method, SurrogateCurve>,
) -> Result<bool, ReportError> {
    if curves.is_empty() {
        return Ok(false);
    }
    register_fonts()?;
    let err = plot_error(path);
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;

    let points = curves.values().flat_map(|c| &c.points);
    let x = step_range(points.clone().map(|p| p.0 as i64));
    let y = padded_range(points.map(|p| p.1), 0.0..100.0);
    let y = y.start.max(0.0)..y.end.min(100.0);
    let decimals = tick_decimals(&y);
    let lines: Vec<Vec<(i64, f64)>> = curves
        .values()
        .map(|c| c.points.iter().map(|(s, a)| (*s as i64, *a)).collect())
        .collect();
    let legend = legend_position(lines.iter().map(Vec::as_slice), &y);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 24))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("surrogate training accuracy (%)")
        .y_label_formatter(&|y| tick_label(*y, decimals))
        .light_line_style(RGBColor(238, 238, 238))
        .axis_desc_style((FONT, 18))
        .label_style((FONT, 15))
        .draw()
        .map_err(|e| err(e.to_string()))?;

    for ((method, curve), line) in curves.iter().zip(&lines) {
        let color = method_color(*method);
        let line = line.iter().copied();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{} (n={})", method.label(), curve.runs))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart
            .draw_series(line.map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}

/// One named series of `(step, value)` points for a panel.
struct Series {
    label: &'static str,
    color: RGBColor,
    points: Vec<(i64, f64)>,
}

fn series(
    run: &Run,
    label: &'static str,
    color: RGBColor,
    pick: fn(&crate::report::runs::MetricsRow) -> Option<f64>,
) -> Series {
    let points = run
        .metrics
        .iter()
        .flatten()
        .filter_map(|r| {
            pick(r)
                .filter(|v| v.is_finite())
                .map(|v| (r.step as i64, v))
        })
        .collect();
    Series {
        label,
        color,
        points,
    }
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    path: &Path,
    caption: &str,
    y_desc: &str,
    all: &[Series],
) -> Result<(), ReportError> {
    let err = plot_error(path);
    let x = step_range(all.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let y = padded_range(
        all.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        0.0..1.0,
    );
    let decimals = tick_decimals(&y);
    let legend = legend_position(all.iter().map(|s| s.points.as_slice()), &y);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc(y_desc)
        .y_label_formatter(&|y| tick_label(*y, decimals))
        .light_line_style(RGBColor(238, 238, 238))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| err(e.to_string()))?;

    for s in all {
        let values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
        let smooth = moving_average(&values, SMOOTHING_WINDOW);
        let steps = s.points.iter().map(|p| p.0);
        let color = s.color;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.mix(0.25)))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(steps.zip(smooth), color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Draws a run's loss (upper panel) and its bounds per term (lower panel, when the run
/// records any) against steps into `path`: raw values faint, a moving average of
/// [`SMOOTHING_WINDOW`] steps solid. Does nothing and returns `false` when the run has no
/// metrics rows.
pub fn draw_loss(path: &Path, run: &Run) -> Result<bool, ReportError> {
    let loss = series(run, "loss", RGBColor(40, 40, 40), |r| Some(r.loss));
    if loss.points.is_empty() {
        return Ok(false);
    }
    let bounds: Vec<Series> = [
        series(run, "bound I(X,Z)", method_color(Method::Xz), |r| {
            r.bound_xz
        }),
        series(run, "bound I(X,A)", method_color(Method::Xa), |r| {
            r.bound_xa
        }),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();

    register_fonts()?;
    let err = plot_error(path);
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let c = &run.config;
    let title = format!(
        "{}: {} on {}, seed {}",
        run.name,
        c.objective.label(),
        c.backbone.label(),
        c.seed
    );
    let root = root
        .titled(&title, (FONT, 22))
        .map_err(|e| err(e.to_string()))?;
    let smoothing = format!("moving average of {SMOOTHING_WINDOW} steps; raw values faint");
    if bounds.is_empty() {
        draw_panel(&root, path, &format!("Loss ({smoothing})"), "loss", &[loss])?;
    } else {
        let (upper, lower) = root.split_vertically(PLOT_SIZE.1 / 2 - 20);
        draw_panel(
            &upper,
            path,
            &format!("Loss ({smoothing})"),
            "loss",
            &[loss],
        )?;
        draw_panel(&lower, path, "Bounds per term", "bound (nats)", &bounds)?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}

/// The file name of the surrogate picture of a group: `surrogate-<backbone>.png` for runs
/// pretrained on CIFAR-10, `surrogate-<dataset>-<backbone>.png` otherwise.
pub fn surrogate_file_name(dataset: &str, backbone: Backbone) -> String {
    if dataset == crate::report::table::PRETRAIN_DATASET {
        format!("surrogate-{backbone}.png")
    } else {
        format!("surrogate-{dataset}-{backbone}.png")
    }
}

/// Writes every picture of the runs into `out`: one surrogate picture per (pretraining
/// data set, backbone) with surrogate measurements, and `<run-name>-loss.png` per run with
/// metrics rows. Returns the files written, in order.
pub fn write_plots(set: &RunSet, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();

    let mut groups: BTreeMap<(String, Backbone), Vec<&Run>> = BTreeMap::new();
    for run in &set.runs {
        groups
            .entry((run.config.dataset.clone(), run.config.backbone))
            .or_default()
            .push(run);
    }
    for ((dataset, backbone), runs) in groups {
        let curves = surrogate_curves(&runs);
        let path = out.join(surrogate_file_name(&dataset, backbone));
        let title = format!(
            "Surrogate linear-classifier accuracy, {} on {} (mean over seeds)",
            backbone.label(),
            dataset.to_uppercase().replace("CIFAR", "CIFAR-")
        );
        if draw_surrogate(&path, &title, &curves)? {
            written.push(path);
        } else {
            tracing::info!("no surrogate accuracy recorded for {backbone} on {dataset}; no curve");
        }
    }

    for run in &set.runs {
        let path = out.join(format!("{}-loss.png", run.name));
        if draw_loss(&path, run)? {
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::runs::tests::config_text;
    use crate::report::runs::{parse_config, parse_metrics};

    fn run_with_metrics(name: &str, objective: &str, seed: u64, csv: &str) -> Run {
        let path = Path::new("t");
        Run {
            name: name.into(),
            dir: PathBuf::from(name),
            config: parse_config(&config_text("conv4", objective, seed), path).unwrap(),
            metrics: Some(parse_metrics(csv, path).unwrap()),
            probes: Default::default(),
        }
    }

    fn csv(rows: usize, surrogate_every: usize, offset: f64) -> String {
        let mut text = String::from("step,epoch,loss,bound_xz,bound_xa,surrogate_accuracy\n");
        for step in 1..=rows {
            let t = step as f64;
            let acc = if surrogate_every > 0 && step % surrogate_every == 0 {
                format!("{}", (0.2 + offset + 0.3 * t / rows as f64).min(1.0))
            } else {
                String::new()
            };
            let wiggle = if step % 2 == 0 { 0.1 } else { -0.1 };
            text += &format!(
                "{step},1,{},{},{},{acc}\n",
                -t.ln() + wiggle,
                t.ln(),
                0.5 * t.ln()
            );
        }
        text
    }

    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        let image = image::load_from_memory(&bytes).unwrap().to_rgb8();
        let dark = image
            .pixels()
            .filter(|p| p.0.iter().all(|c| *c < 100))
            .count();
        assert!(
            dark > 500,
            "{} looks blank ({dark} dark pixels)",
            path.display()
        );
        image.dimensions()
    }

    #[test]
    fn moving_average_by_hand() {
        let v = [1.0, 3.0, 5.0, 7.0];
        assert_eq!(moving_average(&v, 2), vec![1.0, 2.0, 4.0, 6.0]);
        assert_eq!(moving_average(&v, 3), vec![1.0, 2.0, 3.0, 5.0]);
        assert_eq!(moving_average(&v, 0), v.to_vec());
        assert!(moving_average(&[], 20).is_empty());
    }

    #[test]
    fn surrogate_curves_average_seeds_per_step() {
        let text = |a: f64, b: f64| {
            format!(
                "step,epoch,loss,surrogate_accuracy\n100,1,0.1,{a}\n150,1,0.1,\n200,1,0.1,{b}\n"
            )
        };
        let r0 = run_with_metrics("a", "xz", 0, &text(0.30, 0.50));
        let r1 = run_with_metrics("b", "xz", 1, &text(0.40, 0.60));
        let r2 = run_with_metrics(
            "c",
            "xa",
            0,
            "step,epoch,loss,surrogate_accuracy\n100,1,0.1,\n",
        );
        let curves = surrogate_curves(&[&r0, &r1, &r2]);
        assert_eq!(
            curves.len(),
            1,
            "a run without surrogate rows gives no curve"
        );
        assert_eq!(curves[&Method::Xz].runs, 2);
        let xz = &curves[&Method::Xz].points;
        assert_eq!(xz.len(), 2);
        assert_eq!(xz[0].0, 100);
        assert!(
            (xz[0].1 - 35.0).abs() < 1e-9 && (xz[1].1 - 55.0).abs() < 1e-9,
            "{xz:?}"
        );
    }

    #[test]
    fn pictures_are_written_at_the_stated_size() {
        let out = tempfile::tempdir().unwrap();
        let set = RunSet {
            root: "runs".into(),
            runs: vec![
                run_with_metrics("xz-s0", "xz", 0, &csv(300, 100, 0.0)),
                run_with_metrics("xz-s1", "xz", 1, &csv(300, 100, 0.05)),
                run_with_metrics("xza-s0", "xza", 0, &csv(300, 100, 0.1)),
                run_with_metrics(
                    "sup-s0",
                    "supervised",
                    0,
                    "step,epoch,loss\n1,1,2.3\n2,1,2.1\n",
                ),
            ],
            skipped: vec![],
        };
        let written = write_plots(&set, out.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "surrogate-conv4.png",
                "xz-s0-loss.png",
                "xz-s1-loss.png",
                "xza-s0-loss.png",
                "sup-s0-loss.png"
            ]
        );
        for path in &written {
            assert_eq!(png_size(path), PLOT_SIZE);
        }
    }

    #[test]
    fn runs_without_surrogate_rows_or_metrics_draw_no_curve() {
        let out = tempfile::tempdir().unwrap();
        let mut empty = run_with_metrics("empty", "xz", 0, "step,epoch,loss\n");
        let no_surrogate = run_with_metrics("plain", "xza", 0, &csv(50, 0, 0.0));
        let written_none = write_plots(
            &RunSet {
                root: "r".into(),
                runs: vec![empty.clone()],
                skipped: vec![],
            },
            out.path(),
        )
        .unwrap();
        assert!(written_none.is_empty());
        empty.metrics = None;
        let written = write_plots(
            &RunSet {
                root: "r".into(),
                runs: vec![empty, no_surrogate],
                skipped: vec![],
            },
            out.path(),
        )
        .unwrap();
        assert_eq!(written, vec![out.path().join("plain-loss.png")]);
        assert!(!out.path().join("surrogate-conv4.png").exists());
    }
}

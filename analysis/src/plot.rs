//! Result → pictures: the m_γγ spectrum with the fit and its residuals, and the cut flow, as
//! PNG and SVG. Uses a bundled DejaVu Sans font (`assets/`), so no system library is needed.

use crate::fit::{expected_per_bin, FitResult};
use crate::histogram::Histogram;
use crate::select::CutFlow;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font as "sans-serif" (once); other crates' plots call it too.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to be valid.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type PlotResult = Result<(), String>;

/// Draws the same picture into `<stem>.png` and `<stem>.svg` (a macro: the two backends are
/// different types, and the drawing functions are generic over them).
macro_rules! png_and_svg {
    ($stem:expr, $size:expr, |$root:ident| $draw:expr) => {{
        register_font();
        let png = $stem.with_extension("png");
        let svg = $stem.with_extension("svg");
        {
            let $root = BitMapBackend::new(&png, $size).into_drawing_area();
            $draw?;
        }
        let $root = SVGBackend::new(&svg, $size).into_drawing_area();
        $draw
    }};
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Draws the m_γγ plot into `<stem>.png` and `<stem>.svg`. `label` names the data
/// (e.g. "SYNTHETIC data").
/// The m_γγ spectrum with the fit. `blind`: the data in that window are not drawn and the fit
/// is the background-only fit to the sidebands.
pub fn mass_plot(
    h: &Histogram,
    fit: &FitResult,
    blind: Option<(f64, f64)>,
    label: &str,
    stem: &Path,
) -> PlotResult {
    png_and_svg!(stem, (1000, 800), |root| draw_mass(
        root, h, fit, blind, label
    ))
}

fn draw_mass<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    h: &Histogram,
    fit: &FitResult,
    blind: Option<(f64, f64)>,
    label: &str,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (upper, lower) = root.split_vertically(560);
    let b = h.binning;
    let p = fit.values();
    let model = &fit.model;
    let grid: Vec<f64> = (0..=400)
        .map(|i| b.lo + (b.hi - b.lo) * i as f64 / 400.0)
        .collect();
    let curve: Vec<(f64, f64, f64)> = grid
        .iter()
        .map(|&x| {
            let (sb, bkg) = expected_per_bin(model, h, &p, x);
            (x, sb, bkg)
        })
        .collect();
    let err_of = |i: usize| h.sumw2[i].sqrt();
    // Blinded: the bins whose centre is in the window are not drawn, nor do they set the
    // axis range (a range set by the peak would show it).
    let shown: Vec<usize> = (0..b.bins)
        .filter(|&i| blind.is_none_or(|(a, c)| b.center(i) < a || b.center(i) > c))
        .collect();
    let ymax = shown
        .iter()
        .map(|&i| h.sumw[i] + err_of(i))
        .chain(curve.iter().map(|c| c.1))
        .fold(0.0, f64::max)
        * 1.25;

    let mut chart = ChartBuilder::on(&upper)
        .margin(15)
        .x_label_area_size(10)
        .y_label_area_size(70)
        .caption(format!("m_γγ, {label}"), ("sans-serif", 26))
        .build_cartesian_2d(b.lo..b.hi, 0.0..ymax.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .y_desc(format!("Events / {:.3} GeV", b.width()))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_labels(12)
        .x_label_formatter(&|_| String::new())
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            curve.iter().map(|c| (c.0, c.2)),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?
        .label("background only")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if blind.is_none() {
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|c| (c.0, c.1)),
                RED.stroke_width(2),
            ))
            .map_err(err)?
            .label("signal + background fit")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    chart
        .draw_series(shown.iter().map(|&i| {
            let (x, y, e) = (b.center(i), h.sumw[i], err_of(i));
            ErrorBar::new_vertical(x, y - e, y, y + e, BLACK.filled(), 4)
        }))
        .map_err(err)?
        .label(label.to_string())
        .legend(|(x, y)| Circle::new((x + 10, y), 3, BLACK.filled()));
    chart
        .draw_series(
            shown
                .iter()
                .map(|&i| Circle::new((b.center(i), h.sumw[i]), 3, BLACK.filled())),
        )
        .map_err(err)?;
    // Fit results as legend entries.
    let text = |name: &str, unit: &str| {
        fit.param(name)
            .map(|q| format!("{name} = {:.3} ± {:.3} {unit}", q.value, q.error))
            .unwrap_or_default()
    };
    let lines = match blind {
        Some((a, c)) => vec![
            format!("BLINDED: data in {a}–{c} GeV not shown"),
            format!("background-only fit to the sidebands ({:?})", fit.status),
        ],
        None => vec![
            text("mean", "GeV"),
            text("sigma", "GeV"),
            text("nsig", ""),
            format!("Z = {:.2} σ   (fit status: {:?})", fit.z, fit.status),
        ],
    };
    for line in lines {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
            .map_err(err)?
            .label(line)
            .legend(|(x, y)| Circle::new((x, y), 0, WHITE));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;

    // Residuals: data − background, with the fitted signal.
    let resid: Vec<(f64, f64, f64)> = shown
        .iter()
        .map(|&i| {
            let x = b.center(i);
            (
                x,
                h.sumw[i] - expected_per_bin(model, h, &p, x).1,
                err_of(i),
            )
        })
        .collect();
    let r = resid.iter().map(|r| r.1.abs() + r.2).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&lower)
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(b.lo..b.hi, -r..r)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("m_γγ [GeV]")
        .y_desc("data − bkg")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_labels(12)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            vec![(b.lo, 0.0), (b.hi, 0.0)],
            BLUE.stroke_width(1),
        ))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            curve.iter().map(|c| (c.0, c.1 - c.2)),
            RED.stroke_width(2),
        ))
        .map_err(err)?;
    chart
        .draw_series(
            resid
                .iter()
                .map(|&(x, y, e)| ErrorBar::new_vertical(x, y - e, y, y + e, BLACK.filled(), 4)),
        )
        .map_err(err)?;
    chart
        .draw_series(
            resid
                .iter()
                .map(|&(x, y, _)| Circle::new((x, y), 3, BLACK.filled())),
        )
        .map_err(err)?;
    root.present().map_err(err)
}

/// Draws the cut flow (events passing each cut) into `<stem>.png` and `<stem>.svg`.
pub fn cut_flow_plot(flow: &CutFlow, label: &str, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (1000, 520), |root| draw_cut_flow(root, flow, label))
}

fn draw_cut_flow<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    flow: &CutFlow,
    label: &str,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let total = flow.0.first().map_or(0, |c| c.all);
    let mut rows: Vec<(String, u64)> = vec![("all events".to_string(), total)];
    rows.extend(flow.0.iter().map(|c| (c.cut.clone(), c.pass)));
    let n = rows.len();
    let xmax = (total.max(1) as f64) * 1.3;
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .caption(format!("Cut flow, {label}"), ("sans-serif", 24))
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..xmax, 0.0..n as f64)
        .map_err(err)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            // Label the centre of each bar, top row first.
            let k = (n as f64 - y - 0.5).round();
            if (n as f64 - y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                names[k as usize].clone()
            } else {
                String::new()
            }
        })
        .x_desc("events")
        .x_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(k, (_, v))| {
            let y0 = (n - 1 - k) as f64 + 0.15;
            Rectangle::new([(0.0, y0), (*v as f64, y0 + 0.7)], BLUE.mix(0.6).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(k, (_, v))| {
            let y = (n - 1 - k) as f64 + 0.62;
            let frac = if total > 0 {
                100.0 * *v as f64 / total as f64
            } else {
                0.0
            };
            Text::new(
                format!("{v} ({frac:.1} %)"),
                (*v as f64 + xmax * 0.01, y),
                ("sans-serif", 15),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Steps 4–5: the score distributions of signal MC and the data sidebands (each normalised
/// to 1) with the category boundaries, into `<stem>.png|svg`.
pub fn score_plot(c: &crate::categorize::Categories, label: &str, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (1000, 600), |root| draw_scores(root, c, label))
}

fn draw_scores<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &crate::categorize::Categories,
    label: &str,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let norm = |v: &[f64]| {
        let t: f64 = v.iter().sum();
        v.iter()
            .map(|x| x / t.max(f64::MIN_POSITIVE))
            .collect::<Vec<f64>>()
    };
    let (s, b) = (norm(&c.score_signal), norm(&c.score_background));
    let n = s.len().max(1);
    let ymax = s.iter().chain(&b).fold(0.0f64, |m, x| m.max(*x)) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .caption(
            format!("Classifier score (held-out), {label}"),
            ("sans-serif", 24),
        )
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, 0.0..ymax.max(1e-6))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("score")
        .y_desc("fraction per bin")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (v, colour, name) in [
        (&s, RED, "signal MC"),
        (&b, BLUE, "data sidebands (background)"),
    ] {
        let steps = (0..n).flat_map(|i| {
            let (x0, x1) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
            [(x0, v[i]), (x1, v[i])]
        });
        chart
            .draw_series(LineSeries::new(steps, colour.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    for &edge in &c.boundaries {
        chart
            .draw_series(LineSeries::new(
                [(edge, 0.0), (edge, ymax)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// The held-out ROC curve with its AUC, into `<stem>.png|svg`.
pub fn roc_plot(roc: &[(f64, f64)], auc: f64, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (700, 700), |root| draw_roc(root, roc, auc))
}

fn draw_roc<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    roc: &[(f64, f64)],
    auc: f64,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .caption(
            format!("ROC (held-out), AUC = {auc:.4}"),
            ("sans-serif", 24),
        )
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("background efficiency")
        .y_desc("signal efficiency")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.4)))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(roc.iter().copied(), RED.stroke_width(2)))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Combined expected Z against the number of categories, into `<stem>.png|svg`.
pub fn z_plot(c: &crate::categorize::Categories, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (800, 500), |root| draw_z(root, c))
}

fn draw_z<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &crate::categorize::Categories,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let n = c.z_by_categories.len();
    let zmax = c.z_by_categories.iter().fold(0.0f64, |m, z| m.max(*z)) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .caption(
            "Expected significance vs categories (blinded)",
            ("sans-serif", 22),
        )
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5..n as f64 + 0.5, 0.0..zmax.max(1e-6))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("categories")
        .y_desc("combined Asimov Z")
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    let pts: Vec<(f64, f64)> = c
        .z_by_categories
        .iter()
        .enumerate()
        .map(|(i, z)| ((i + 1) as f64, *z))
        .collect();
    chart
        .draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(pts.iter().map(|p| Circle::new(*p, 5, BLUE.filled())))
        .map_err(err)?;
    root.present().map_err(err)
}

/// The simultaneous fit: one panel per category with its data and the fitted signal +
/// background and background, into `<stem>.png|svg`.
pub fn categories_fit_plot(
    fits: &crate::fit::simultaneous::Fits,
    cats: &crate::categorize::Categories,
    stem: &Path,
) -> PlotResult {
    let n = fits.model.channels.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    png_and_svg!(stem, (420 * cols as u32, 340 * rows as u32), |root| {
        draw_categories(root, fits, cats, rows, cols)
    })
}

fn draw_categories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    fits: &crate::fit::simultaneous::Fits,
    cats: &crate::categorize::Categories,
    rows: usize,
    cols: usize,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let model = &fits.model;
    let p = model.values(&fits.combined);
    let panels = root.split_evenly((rows, cols));
    for (k, (panel, ch)) in panels.iter().zip(&model.channels).enumerate() {
        let b = &ch.data.binning;
        let total = &model.expectation(&p)[k];
        let bkg = model.background(k, &p);
        // Blinded bins neither drawn nor setting the axis range (which would show the peak).
        let shown = |i: usize| {
            let x = b.center(i);
            model.blind.is_none_or(|(a, c)| x < a || x > c)
        };
        let ymax = (0..b.bins)
            .filter(|&i| shown(i))
            .map(|i| ch.data.sumw[i] + ch.data.sumw[i].sqrt())
            .chain(total.iter().copied())
            .fold(0.0, f64::max)
            * 1.2;
        let range = cats.categories.get(k).map_or((0.0, 1.0), |c| c.score);
        let mut chart = ChartBuilder::on(panel)
            .margin(8)
            .caption(
                format!("score [{:.3}, {:.3})", range.0, range.1),
                ("sans-serif", 16),
            )
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(b.lo..b.hi, 0.0..ymax.max(1.0))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(5)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        let line = |v: &[f64]| (0..b.bins).map(|i| (b.center(i), v[i])).collect::<Vec<_>>();
        chart
            .draw_series(LineSeries::new(line(&bkg), BLUE.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(line(total), RED.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series((0..b.bins).filter(|&i| shown(i)).map(|i| {
                let (x, y) = (b.center(i), ch.data.sumw[i]);
                let e = y.sqrt();
                ErrorBar::new_vertical(x, y - e, y, y + e, BLACK.filled(), 3)
            }))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

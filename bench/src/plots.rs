//! The benchmark's pictures, PNG and SVG each: success per model × task with Wilson
//! intervals, the error distribution per model, cost against success with the Pareto front,
//! and pass@k curves.

use super::cell::Kind;
use super::report::Report;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

type Res = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Draws every plot into `dir` (`success.png|svg`, `errors`, `cost`, `pass_at_k`).
pub fn all(r: &Report, dir: &Path) -> Res {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    analysis::plot::register_font();
    macro_rules! both {
        ($name:literal, $size:expr, $f:ident) => {{
            let png = dir.join(concat!($name, ".png"));
            $f(BitMapBackend::new(&png, $size).into_drawing_area(), r)
                .map_err(|e| format!("{}: {e}", png.display()))?;
            let svg = dir.join(concat!($name, ".svg"));
            $f(SVGBackend::new(&svg, $size).into_drawing_area(), r)
                .map_err(|e| format!("{}: {e}", svg.display()))?;
        }};
    }
    both!("success", (900, 600), success);
    both!("errors", (900, 600), errors);
    both!("cost", (900, 600), cost);
    both!("pass_at_k", (900, 600), pass_at_k);
    Ok(())
}

fn names(r: &Report) -> (Vec<String>, Vec<String>) {
    (
        r.config.models.iter().map(|m| m.name.clone()).collect(),
        r.config.tasks.iter().map(|t| t.name.clone()).collect(),
    )
}

/// A model × task grid, coloured by success rate, each square with its count and interval.
fn success<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &Report) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (models, tasks) = names(r);
    let (nm, nt) = (models.len() as i32, tasks.len() as i32);
    let mut chart = ChartBuilder::on(&root)
        .caption("Success rate (95 % Wilson interval)", ("sans-serif", 24))
        .margin(15)
        .margin_left(150)
        .margin_bottom(40)
        .build_cartesian_2d(0.0..nt as f64, 0.0..nm as f64)
        .map_err(err)?;
    // The names centred on their rows and columns (the axis labels would sit on the edges).
    let anchored =
        |h: HPos| TextStyle::from(("sans-serif", 17).into_font()).pos(Pos::new(h, VPos::Center));
    for (i, t) in tasks.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(t.clone(), (x, y + 20), anchored(HPos::Center)))
            .map_err(err)?;
    }
    for (i, m) in models.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(0.0, (nm - 1 - i as i32) as f64 + 0.5));
        root.draw(&Text::new(m.clone(), (x - 10, y), anchored(HPos::Right)))
            .map_err(err)?;
    }
    for p in &r.results {
        let x = tasks.iter().position(|t| *t == p.task).unwrap_or(0) as i32;
        // The first model on top.
        let y = nm - 1 - models.iter().position(|m| *m == p.model).unwrap_or(0) as i32;
        let rate = p.stats.success_rate.unwrap_or(0.0);
        // White (0) to green (1); grey where nothing was scored.
        let colour = match p.stats.success_rate {
            Some(_) => RGBColor(
                (255.0 * (1.0 - 0.7 * rate)) as u8,
                (255.0 * (1.0 - 0.3 * rate)) as u8,
                (255.0 * (1.0 - 0.7 * rate)) as u8,
            ),
            None => RGBColor(220, 220, 220),
        };
        let corners = [(x as f64, y as f64), (x as f64 + 1.0, y as f64 + 1.0)];
        chart
            .draw_series([
                Rectangle::new(corners, colour.filled()),
                Rectangle::new(corners, BLACK.stroke_width(1)),
            ])
            .map_err(err)?;
        let (cx, cy) = chart.backend_coord(&(x as f64 + 0.5, y as f64 + 0.5));
        let lines = [
            format!(
                "{}/{} = {:.0} %",
                p.stats.successes,
                p.stats.trials,
                100.0 * rate
            ),
            format!(
                "[{:.0}–{:.0} %]",
                100.0 * p.stats.wilson95[0],
                100.0 * p.stats.wilson95[1]
            ),
        ];
        for (i, line) in lines.iter().enumerate() {
            let style = TextStyle::from(("sans-serif", 20).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center));
            root.draw(&Text::new(
                line.clone(),
                (cx, cy - 12 + 24 * i as i32),
                style,
            ))
            .map_err(err)?;
        }
    }
    root.present().map_err(err)
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(166, 206, 227),
    RGBColor(31, 120, 180),
    RGBColor(178, 223, 138),
    RGBColor(51, 160, 44),
    RGBColor(251, 154, 153),
    RGBColor(227, 26, 28),
    RGBColor(253, 191, 111),
    RGBColor(255, 127, 0),
    RGBColor(202, 178, 214),
    RGBColor(106, 61, 154),
];

/// Failed cells per model, stacked by final category.
fn errors<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &Report) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (models, _) = names(r);
    let count = |m: &str, k: Kind| -> u64 {
        let s = &r.models[m];
        if k == Kind::HarnessError {
            s.harness_errors
        } else {
            s.errors.get(k.name()).copied().unwrap_or(0)
        }
    };
    let ymax = models
        .iter()
        .map(|m| Kind::ALL.iter().map(|(k, _)| count(m, *k)).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption("Failed cells by final cause", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..models.len() as f64, 0.0..ymax as f64 * 1.3)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(models.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = (*x - 0.5).round();
            if (x - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                models.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("cells")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    for (ki, (kind, _)) in Kind::ALL.iter().enumerate() {
        let colour = PALETTE[ki % PALETTE.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = models
            .iter()
            .enumerate()
            .filter(|(_, m)| count(m, *kind) > 0)
            .map(|(i, m)| {
                let below: u64 = Kind::ALL[..ki].iter().map(|(k, _)| count(m, *k)).sum();
                let top = below + count(m, *kind);
                Rectangle::new(
                    [(i as f64 + 0.2, below as f64), (i as f64 + 0.8, top as f64)],
                    colour.filled(),
                )
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(kind.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Cost per cell against success rate, one point per model with its interval; the Pareto
/// front (no other model is both cheaper and more successful) joined by a line.
fn cost<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &Report) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let points: Vec<(String, f64, f64, [f64; 2])> = r
        .models
        .iter()
        .filter_map(|(m, s)| Some((m.clone(), s.cost_per_cell?, s.success_rate?, s.wilson95)))
        .collect();
    let xmax = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-6) * 1.3;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Cost per cell vs success rate (Pareto front joined)",
            ("sans-serif", 24),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax, 0.0..1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("USD per cell")
        .y_desc("success rate")
        .x_label_formatter(&|x| format!("{x:.3}"))
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;
    let mut front: Vec<&(String, f64, f64, [f64; 2])> = points
        .iter()
        .filter(|p| {
            !points
                .iter()
                .any(|q| q.1 <= p.1 && q.2 >= p.2 && (q.1 < p.1 || q.2 > p.2))
        })
        .collect();
    front.sort_by(|a, b| a.1.total_cmp(&b.1));
    chart
        .draw_series(LineSeries::new(
            front.iter().map(|p| (p.1, p.2)),
            RED.stroke_width(2),
        ))
        .map_err(err)?
        .label("Pareto front")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    for (i, (m, x, y, w)) in points.iter().enumerate() {
        let c = PALETTE[(2 * i + 1) % PALETTE.len()];
        chart
            .draw_series([ErrorBar::new_vertical(*x, w[0], *y, w[1], c.filled(), 8)])
            .map_err(err)?;
        chart
            .draw_series([Circle::new((*x, *y), 6, c.filled())])
            .map_err(err)?
            .label(m.clone())
            .legend(move |(x, y)| Circle::new((x + 10, y), 5, c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// pass@k against k per model (mean over tasks).
fn pass_at_k<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &Report) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let kmax = r
        .models
        .values()
        .map(|s| s.pass_at_k.len())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("pass@k (mean over tasks)", ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5..kmax + 0.5, 0.0..1.05)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("k")
        .y_desc("pass@k")
        .x_labels(kmax as usize + 2)
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
    for (i, (m, s)) in r.models.iter().enumerate() {
        let c = PALETTE[(2 * i + 1) % PALETTE.len()];
        let pts: Vec<(f64, f64)> = s.pass_at_k.iter().map(|(k, v)| (*k as f64, *v)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(err)?
            .label(m.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

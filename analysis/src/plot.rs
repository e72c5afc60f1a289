//! Result → pictures, as PNG and SVG, in one style fit for a talk: the m_γγ spectrum with the
//! fit and its residuals, the cut flow, the classifier's score and ROC, the significance per
//! number of categories, the categories' fits, and the pulls of toy fits.
//!
//! Every physics plot carries the experiment label ([`Experiment`]), axis titles with units,
//! and values rounded to their errors ([`pdg_round`]). Labels and legends are boxes
//! (`TextBox`) in a corner of the plotting area; the y axis leaves room for them above every
//! point and curve beneath (`headroom`), so they never hide data. Uses a bundled DejaVu Sans
//! font (`assets/`), so no system library is needed.

use crate::categorize::Categories;
use crate::fit::simultaneous::Fits;
use crate::fit::toys::Pull;
use crate::fit::{expected_per_bin, FitResult, FitStatus};
use crate::histogram::Histogram;
use crate::select::CutFlow;
use crate::workflow::AnalysisResult;
use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
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

// ---------------------------------------------------------------------------------------
// Numbers as text.

/// `value ± error` rounded by the PDG rule: the error to two significant digits if its three
/// leading digits are 100–354, to one if 355–949, and to two, rounded up to 1000, if 950–999;
/// the value to the same decimal place (`126.207 ± 0.372` → `126.2 ± 0.4`). An error that is
/// not positive and finite (a parameter at a bound) leaves the value alone, to four
/// significant digits.
pub fn pdg_round(value: f64, error: f64) -> String {
    if !(error > 0.0 && error.is_finite() && value.is_finite()) {
        return significant(value, 4);
    }
    let mut exponent = error.log10().floor() as i32;
    // The three leading digits, 100–1000 (1000 when rounding carries).
    let leading = (error / 10f64.powi(exponent - 2)).round();
    let digits = if leading < 355.0 {
        2
    } else if leading < 950.0 {
        1
    } else {
        exponent += 1; // 950–999 round up to 1000: two digits of the next power
        2
    };
    let place = exponent - digits + 1;
    format!("{} ± {}", fixed(value, place), fixed(error, place))
}

/// `x` rounded to the digit of 10^`place` and written with no digit beyond it (no "-0").
fn fixed(x: f64, place: i32) -> String {
    let s = if place >= 0 {
        let unit = 10f64.powi(place);
        format!("{:.0}", (x / unit).round() * unit)
    } else {
        format!("{x:.*}", (-place) as usize)
    };
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// `x` to `n` significant digits (`10.064` → `10.1` for three).
fn significant(x: f64, n: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let place = |v: f64| v.abs().log10().floor() as i32 - n + 1;
    let unit = 10f64.powi(place(x));
    // Rounding may carry into a new digit (9.996 → 10.0): one place fewer then.
    fixed(x, place((x / unit).round() * unit))
}

/// `s`, a number, without trailing zeros after its point (`1.000` → `1`, `0.500` → `0.5`).
fn trim_zeros(s: String) -> String {
    let t = match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.'),
        false => &s,
    };
    match t {
        "-0" => "0".to_string(),
        t => t.to_string(),
    }
}

/// A tick label: the value with no trailing zeros.
fn tick(x: &f64) -> String {
    trim_zeros(format!("{x:.4}"))
}

/// A bin width as an axis title shows it (`Events / 1 GeV`): three significant digits, no
/// trailing zeros.
fn bin_width(w: f64) -> String {
    trim_zeros(significant(w, 3))
}

// ---------------------------------------------------------------------------------------
// The house style.

/// Font sizes (pixels) of a full-size plot: tick labels, legend and label text, the
/// experiment's name.
const TICKS: u32 = 18;
const TEXT: u32 = 18;
const NAME: u32 = 22;
/// The fitted signal + background, the background, the blinded window, guide lines.
const FIT: RGBColor = RGBColor(215, 25, 28);
const BKG: RGBColor = RGBColor(30, 70, 200);
const BLINDED: RGBColor = RGBColor(215, 215, 215);
const GUIDE: RGBColor = RGBColor(120, 120, 120);
/// The toys' histogram.
const TOYS: RGBColor = RGBColor(165, 185, 235);
/// The x axis in m_γγ.
const MASS_AXIS: &str = "m_γγ [GeV]";

/// The experiment label every physics plot carries: "ATLAS Open Data", marked "(SYNTHETIC)"
/// when any input is, the centre-of-mass energy and the data's luminosity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Experiment {
    /// Whether any input is SYNTHETIC.
    pub synthetic: bool,
    /// Integrated luminosity of the data, pb⁻¹.
    pub lumi_pb: f64,
}

impl Experiment {
    /// The label of the run that wrote `r`: its inputs' `synthetic_inputs` and its
    /// configuration's luminosity (`provenance.config.cuts.lumi_pb`).
    pub fn of(r: &AnalysisResult) -> Self {
        Self {
            synthetic: r.synthetic_inputs,
            lumi_pb: r.provenance.config.cuts.lumi_pb,
        }
    }

    /// "ATLAS Open Data (SYNTHETIC)" or "ATLAS Open Data".
    pub fn name(&self) -> &'static str {
        match self.synthetic {
            true => "ATLAS Open Data (SYNTHETIC)",
            false => "ATLAS Open Data",
        }
    }

    /// "√s = 13 TeV, ∫L dt = 10.1 fb⁻¹": the luminosity in fb⁻¹ to three significant digits.
    pub fn conditions(&self) -> String {
        format!(
            "√s = 13 TeV, ∫L dt = {} fb⁻¹",
            significant(self.lumi_pb / 1000.0, 3)
        )
    }

    /// What the data are called in a legend.
    fn data(&self) -> &'static str {
        match self.synthetic {
            true => "SYNTHETIC data",
            false => "Data",
        }
    }

    /// The label as a box at `place`: the name, the conditions, then `more` lines.
    fn label(&self, place: Place, more: &[String]) -> TextBox {
        let mut b = TextBox::new(place)
            .sized(Key::Text, self.name(), NAME)
            .with(Key::Text, self.conditions());
        for line in more {
            b = b.with(Key::Text, line.clone());
        }
        b
    }
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The space around a chart's plotting area (pixels: `left` and `bottom` hold the tick labels
/// and axis titles) and its tick labels' font size.
#[derive(Clone, Copy)]
struct Frame {
    top: u32,
    right: u32,
    left: u32,
    bottom: u32,
    ticks: u32,
}

impl Frame {
    /// A full-size plot's.
    const PLOT: Frame = Frame {
        top: 20,
        right: 30,
        left: 88,
        bottom: 62,
        ticks: TICKS,
    };

    /// A chart in this frame on `area`, with axes `x` and `y`.
    fn chart<'a, DB: DrawingBackend>(
        &self,
        area: &'a DrawingArea<DB, Shift>,
        x: Range<f64>,
        y: Range<f64>,
    ) -> Result<Chart<'a, DB>, String> {
        ChartBuilder::on(area)
            .margin_top(self.top)
            .margin_right(self.right)
            .margin_left(8)
            .margin_bottom(8)
            .x_label_area_size(self.bottom)
            .y_label_area_size(self.left)
            .build_cartesian_2d(x, y)
            .map_err(err)
    }

    /// The size (pixels) of the plotting area of a chart on `area` (building one draws
    /// nothing).
    fn plot_size<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<Size, String> {
        let (w, h) = self
            .chart(area, 0.0..1.0, 0.0..1.0)?
            .plotting_area()
            .dim_in_pixel();
        Ok((w as f64, h as f64))
    }

    /// The axes with their `titles` (x, y), tick labels without trailing zeros and a faint
    /// grid; the caller may set its own tick formatters, then draws.
    fn mesh<'a, 'b, DB: DrawingBackend>(
        &self,
        chart: &'b mut Chart<'a, DB>,
        (x, y): (&str, &str),
    ) -> MeshStyle<'a, 'b, RangedCoordf64, RangedCoordf64, DB> {
        let mut m = chart.configure_mesh();
        m.x_desc(x)
            .y_desc(y)
            .label_style(("sans-serif", self.ticks))
            .axis_desc_style(("sans-serif", self.ticks + 2))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.07));
        m
    }
}

/// Width and height of an area, pixels.
type Size = (f64, f64);

/// What a line of a [`TextBox`] is keyed with; a curve is drawn in the style of its key.
#[derive(Clone, Copy)]
enum Key {
    /// Nothing: plain text.
    Text,
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A data point with its error bar.
    Point,
    /// A filled box.
    Band(RGBColor),
}

/// Where a [`TextBox`] sits in its area.
#[derive(Clone, Copy)]
enum Place {
    TopLeft,
    TopRight,
    BottomRight,
    /// Centred on this fraction of the width, its top this many pixels down.
    Top(f64, i32),
}

/// Lines of text, each after its key, in one place of an area: a legend or a label.
struct TextBox {
    place: Place,
    lines: Vec<(Key, String, u32)>,
    /// On a white background (over guide lines), or on what is beneath.
    filled: bool,
}

/// Pixels between a box and the area's edge, and inside a box around its text.
const INSET: i32 = 12;
const PAD: i32 = 6;
/// Width of a key and the space after it.
const KEY: i32 = 34;
const KEY_GAP: i32 = 10;

impl TextBox {
    fn new(place: Place) -> Self {
        Self {
            place,
            lines: Vec::new(),
            filled: false,
        }
    }

    /// A line in the legend font.
    fn with(self, key: Key, text: impl Into<String>) -> Self {
        self.sized(key, text, TEXT)
    }

    /// A line in a font of `size` pixels.
    fn sized(mut self, key: Key, text: impl Into<String>, size: u32) -> Self {
        self.lines.push((key, text.into(), size));
        self
    }

    fn filled(mut self) -> Self {
        self.filled = true;
        self
    }

    /// Left edge of the text: after the keys' column when any line has a key.
    fn text_x(&self) -> i32 {
        match self.lines.iter().any(|l| !matches!(l.0, Key::Text)) {
            true => PAD + KEY + KEY_GAP,
            false => PAD,
        }
    }

    fn line_height(size: u32) -> i32 {
        (size as f64 * 1.35).round() as i32
    }

    /// The box's corners (x0, y0, x1, y1) in an area of `size` pixels; `area` measures text.
    fn rect<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (w, h): Size,
    ) -> Result<[i32; 4], String> {
        let mut width = 0;
        for (_, text, size) in &self.lines {
            let style = TextStyle::from(("sans-serif", *size).into_font());
            width = width.max(area.estimate_text_size(text, &style).map_err(err)?.0 as i32);
        }
        let bw = self.text_x() + width + PAD;
        let bh = 2 * PAD
            + self
                .lines
                .iter()
                .map(|l| Self::line_height(l.2))
                .sum::<i32>();
        let (w, h) = (w as i32, h as i32);
        let (x0, y0) = match self.place {
            Place::TopLeft => (INSET, INSET),
            Place::TopRight => (w - INSET - bw, INSET),
            Place::BottomRight => (w - INSET - bw, h - INSET - bh),
            Place::Top(f, y) => ((f * w as f64) as i32 - bw / 2, y),
        };
        Ok([x0, y0, x0 + bw, y0 + bh])
    }

    /// What the box covers of the top of a plotting area of `size`, for [`headroom`]: its
    /// left and right edges as fractions of the width, its bottom as a fraction of the
    /// height.
    fn extent<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        size: Size,
    ) -> Result<[f64; 3], String> {
        let [x0, _, x1, y1] = self.rect(area, size)?;
        Ok([x0 as f64 / size.0, x1 as f64 / size.0, y1 as f64 / size.1])
    }

    /// Draws the box on `area` (a plotting area as pixels, or a strip of its own).
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> PlotResult {
        let (w, h) = area.dim_in_pixel();
        let [x0, y0, x1, y1] = self.rect(area, (w as f64, h as f64))?;
        if self.filled {
            area.draw(&Rectangle::new(
                [(x0, y0), (x1, y1)],
                WHITE.mix(0.9).filled(),
            ))
            .map_err(err)?;
        }
        let mut y = y0 + PAD;
        for (key, text, size) in &self.lines {
            let lh = Self::line_height(*size);
            let (kx, cy) = (x0 + PAD, y + lh / 2);
            draw_key(area, *key, (kx, cy))?;
            area.draw(&Text::new(
                text.clone(),
                (x0 + self.text_x(), y + (lh - *size as i32) / 2),
                ("sans-serif", *size),
            ))
            .map_err(err)?;
            y += lh;
        }
        Ok(())
    }
}

/// A legend key, `KEY` pixels wide from `x`, centred on `y`.
fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    key: Key,
    (x, y): (i32, i32),
) -> PlotResult {
    let mid = x + KEY / 2;
    match key {
        Key::Text => Ok(()),
        Key::Line(c) => area.draw(&PathElement::new(
            vec![(x, y), (x + KEY, y)],
            c.stroke_width(3),
        )),
        Key::Dashed(c) => (0..3).try_for_each(|k| {
            let a = x + k * 13;
            area.draw(&PathElement::new(
                vec![(a, y), (a + 8, y)],
                c.stroke_width(3),
            ))
        }),
        Key::Point => area
            .draw(&PathElement::new(
                vec![(mid, y - 8), (mid, y + 8)],
                BLACK.stroke_width(1),
            ))
            .and_then(|_| area.draw(&Circle::new((mid, y), 4, BLACK.filled()))),
        Key::Band(c) => area.draw(&Rectangle::new([(x, y - 8), (x + KEY, y + 8)], c.filled())),
    }
    .map_err(err)
}

/// The top of a y axis from 0 that keeps every point `(x, y)` (x as a fraction of the axis
/// width) below the boxes at the top of the plotting area (`extent`s: left, right, bottom as
/// fractions) that it is under, with a gap, and below 92 % of the height elsewhere.
fn headroom(points: impl IntoIterator<Item = (f64, f64)>, boxes: &[[f64; 3]]) -> f64 {
    points
        .into_iter()
        .map(|(x, y)| {
            let depth = boxes
                .iter()
                .filter(|b| x >= b[0] - 0.02 && x <= b[1] + 0.02)
                .map(|b| b[2])
                .fold(0.0, f64::max);
            y / (0.92 - depth).max(0.2)
        })
        .fold(f64::MIN_POSITIVE, f64::max)
}

/// Frames the chart's plotting area and draws `boxes` in it.
fn finish<DB: DrawingBackend>(chart: &Chart<DB>, boxes: &[&TextBox]) -> PlotResult {
    let plot = chart.plotting_area().strip_coord_spec();
    let (w, h) = plot.dim_in_pixel();
    plot.draw(&Rectangle::new(
        [(0, 0), (w as i32 - 1, h as i32 - 1)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    boxes.iter().try_for_each(|b| b.draw(&plot))
}

/// Draws a curve in the style of `key` (a line or a dashed line).
fn draw_curve<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    points: Vec<(f64, f64)>,
    key: Key,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    match key {
        Key::Dashed(c) => chart
            .draw_series(DashedLineSeries::new(points, 9, 6, c.stroke_width(3)))
            .map(|_| ()),
        Key::Line(c) => chart
            .draw_series(LineSeries::new(points, c.stroke_width(3)))
            .map(|_| ()),
        _ => Ok(()),
    }
    .map_err(err)
}

/// Data points `(x, y, error)`: black markers of `radius` with error bars.
fn draw_points<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    points: &[(f64, f64, f64)],
    radius: u32,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, y, e)| ErrorBar::new_vertical(x, y - e, y, y + e, BLACK.filled(), 0)),
        )
        .map_err(err)?;
    chart
        .draw_series(
            points
                .iter()
                .map(|&(x, y, _)| Circle::new((x, y), radius, BLACK.filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// Shades the blinded window `w` grey over the chart's height `y`.
fn shade<DB: DrawingBackend>(
    chart: &mut Chart<DB>,
    (a, c): (f64, f64),
    y: &Range<f64>,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    chart
        .draw_series([Rectangle::new([(a, y.start), (c, y.end)], BLINDED.filled())])
        .map(|_| ())
        .map_err(err)
}

/// The "blinded" label at the top of the window `w` on the x axis `x`, below whichever of the
/// boxes already there (`extent`s in a plotting area of `height` pixels) it would meet.
fn blinded_label((a, c): (f64, f64), x: &Range<f64>, boxes: &[[f64; 3]], height: f64) -> TextBox {
    let frac = |v: f64| (v - x.start) / (x.end - x.start);
    let (f0, f1) = (frac(a), frac(c));
    let below = boxes
        .iter()
        .filter(|b| b[0] < f1 && b[1] > f0)
        .map(|b| b[2] * height)
        .fold(0.0, f64::max);
    TextBox::new(Place::Top((f0 + f1) / 2.0, below as i32 + 4)).with(Key::Text, "blinded")
}

/// A legend at `place` of the data and their fit (blinded: the background-only fit and the
/// window), each keyed as it is drawn.
fn fit_keys(place: Place, exp: &Experiment, blind: Option<(f64, f64)>) -> TextBox {
    let legend = TextBox::new(place).with(Key::Point, exp.data());
    match blind {
        None => legend
            .with(Key::Line(FIT), "Signal + background fit")
            .with(Key::Dashed(BKG), "Background"),
        Some((a, c)) => legend
            .with(Key::Dashed(BKG), "Background-only fit (sidebands)")
            .with(Key::Band(BLINDED), format!("Blinded: {a}–{c} GeV")),
    }
}

/// A strip of `height` pixels across the top of `area` with the experiment label on its left,
/// the `right` box on its right and the `middle` one centred between them (wherever it was
/// placed); returns the area below it.
fn header<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    height: u32,
    exp: &Experiment,
    middle: Option<TextBox>,
    right: TextBox,
) -> Result<DrawingArea<DB, Shift>, String> {
    let (head, rest) = area.split_vertically(height);
    let label = exp.label(Place::TopLeft, &[]);
    let (w, h) = head.dim_in_pixel();
    let size = (w as f64, h as f64);
    if let Some(mut m) = middle {
        let (l, r) = (label.rect(&head, size)?[2], right.rect(&head, size)?[0]);
        m.place = Place::Top((l + r) as f64 / 2.0 / size.0, INSET);
        m.draw(&head)?;
    }
    label.draw(&head)?;
    right.draw(&head)?;
    Ok(rest)
}

// ---------------------------------------------------------------------------------------
// The plots.

/// The m_γγ spectrum with the fit and, below, the data less the fitted background, into
/// `<stem>.png` and `<stem>.svg`. `blind`: that window is shaded and its data not drawn, and
/// the fit is the background-only fit to the sidebands.
pub fn mass_plot(
    h: &Histogram,
    fit: &FitResult,
    blind: Option<(f64, f64)>,
    exp: &Experiment,
    stem: &Path,
) -> PlotResult {
    png_and_svg!(stem, (1000, 800), |root| draw_mass(
        root, h, fit, blind, exp
    ))
}

fn draw_mass<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    h: &Histogram,
    fit: &FitResult,
    blind: Option<(f64, f64)>,
    exp: &Experiment,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (upper, lower) = root.split_vertically(560);
    let b = h.binning;
    let x = b.lo..b.hi;
    let p = fit.values();
    // (x, signal + background, background) on a fine grid.
    let curve: Vec<(f64, f64, f64)> = (0..=400)
        .map(|i| {
            let x = b.lo + (b.hi - b.lo) * i as f64 / 400.0;
            let (sb, bkg) = expected_per_bin(&fit.model, h, &p, x);
            (x, sb, bkg)
        })
        .collect();
    // Blinded: the bins whose centre is in the window are not drawn, nor do they set the
    // axis range (a range set by the peak would show it).
    let data: Vec<(f64, f64, f64)> = (0..b.bins)
        .filter(|&i| blind.is_none_or(|(a, c)| b.center(i) < a || b.center(i) > c))
        .map(|i| (b.center(i), h.sumw[i], h.sumw2[i].sqrt()))
        .collect();

    let frame = Frame {
        bottom: 10,
        ..Frame::PLOT
    };
    let size = frame.plot_size(&upper)?;
    let label = exp.label(Place::TopLeft, &[]);
    let mut legend = fit_keys(Place::TopRight, exp, blind);
    if blind.is_none() {
        for (name, symbol, unit) in [
            ("mean", "m_H", " GeV"),
            ("sigma", "σ", " GeV"),
            ("nsig", "N_sig", ""),
        ] {
            if let Some(q) = fit.param(name) {
                legend = legend.with(
                    Key::Text,
                    format!("{symbol} = {}{unit}", pdg_round(q.value, q.error)),
                );
            }
        }
        legend = legend.with(Key::Text, format!("Z = {:.1}σ", fit.z));
    }
    match fit.status {
        FitStatus::Ok => {}
        FitStatus::AtBound => legend = legend.with(Key::Text, "Fit: a parameter at a bound"),
        FitStatus::Failed => legend = legend.with(Key::Text, "Fit failed"),
    }
    let mut boxes = vec![label.extent(&upper, size)?, legend.extent(&upper, size)?];
    let window = blind.map(|w| blinded_label(w, &x, &boxes, size.1));
    if let Some(w) = &window {
        boxes.push(w.extent(&upper, size)?);
    }
    let frac = |v: f64| (v - b.lo) / (b.hi - b.lo);
    let ymax = headroom(
        data.iter()
            .map(|d| (frac(d.0), d.1 + d.2))
            .chain(curve.iter().map(|c| (frac(c.0), c.1))),
        &boxes,
    );
    let y = 0.0..ymax.max(1.0);
    let mut chart = frame.chart(&upper, x.clone(), y.clone())?;
    frame
        .mesh(
            &mut chart,
            ("", &format!("Events / {} GeV", bin_width(b.width()))),
        )
        .x_label_formatter(&|_| String::new())
        .draw()
        .map_err(err)?;
    if let Some(w) = blind {
        shade(&mut chart, w, &y)?;
    }
    draw_curve(
        &mut chart,
        curve.iter().map(|c| (c.0, c.2)).collect(),
        Key::Dashed(BKG),
    )?;
    if blind.is_none() {
        draw_curve(
            &mut chart,
            curve.iter().map(|c| (c.0, c.1)).collect(),
            Key::Line(FIT),
        )?;
    }
    draw_points(&mut chart, &data, 4)?;
    let boxes: Vec<&TextBox> = [Some(&label), Some(&legend), window.as_ref()]
        .into_iter()
        .flatten()
        .collect();
    finish(&chart, &boxes)?;

    // Residuals: data − background, with the fitted signal.
    let resid: Vec<(f64, f64, f64)> = data
        .iter()
        .map(|&(x, y, e)| (x, y - expected_per_bin(&fit.model, h, &p, x).1, e))
        .collect();
    let r = resid.iter().map(|r| r.1.abs() + r.2).fold(1.0, f64::max) * 1.15;
    let frame = Frame {
        top: 0,
        ..Frame::PLOT
    };
    let mut chart = frame.chart(&lower, x.clone(), -r..r)?;
    frame
        .mesh(&mut chart, (MASS_AXIS, "Data − Bkg."))
        .y_labels(5)
        .draw()
        .map_err(err)?;
    if let Some(w) = blind {
        shade(&mut chart, w, &(-r..r))?;
    }
    draw_curve(&mut chart, vec![(b.lo, 0.0), (b.hi, 0.0)], Key::Dashed(BKG))?;
    if blind.is_none() {
        draw_curve(
            &mut chart,
            curve.iter().map(|c| (c.0, c.1 - c.2)).collect(),
            Key::Line(FIT),
        )?;
    }
    draw_points(&mut chart, &resid, 4)?;
    finish(&chart, &[])?;
    root.present().map_err(err)
}

/// The cut flow (events passing each cut), into `<stem>.png` and `<stem>.svg`.
pub fn cut_flow_plot(flow: &CutFlow, exp: &Experiment, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (1000, 560), |root| draw_cut_flow(root, flow, exp))
}

fn draw_cut_flow<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    flow: &CutFlow,
    exp: &Experiment,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    // The label above the bars: they reach the top right.
    let title = TextBox::new(Place::TopRight).with(Key::Text, "Cut flow of the data");
    let body = header(&root, 70, exp, None, title)?;
    let total = flow.0.first().map_or(0, |c| c.all);
    let mut rows: Vec<(String, u64)> = vec![("all events".to_string(), total)];
    rows.extend(flow.0.iter().map(|c| (c.cut.clone(), c.pass)));
    let n = rows.len();
    let xmax = (total.max(1) as f64) * 1.3;
    let frame = Frame {
        top: 0,
        left: 380,
        ..Frame::PLOT
    };
    let mut chart = frame.chart(&body, 0.0..xmax, 0.0..n as f64)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    // Label the centre of each bar, top row first.
    let name_of = |y: &f64| {
        let k = (n as f64 - y - 0.5).round();
        if (n as f64 - y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
            names[k as usize].clone()
        } else {
            String::new()
        }
    };
    frame
        .mesh(&mut chart, ("Events", "Selection step"))
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&name_of)
        .x_labels(6)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(k, (_, v))| {
            let y0 = (n - 1 - k) as f64 + 0.15;
            Rectangle::new([(0.0, y0), (*v as f64, y0 + 0.7)], BKG.mix(0.55).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(k, (_, v))| {
            let y = (n - 1 - k) as f64 + 0.64;
            let frac = 100.0 * *v as f64 / total.max(1) as f64;
            Text::new(
                format!("{v} ({frac:.1} %)"),
                (*v as f64 + xmax * 0.01, y),
                ("sans-serif", 16),
            )
        }))
        .map_err(err)?;
    finish(&chart, &[])?;
    root.present().map_err(err)
}

/// Steps 4–5: the held-out score distributions of signal MC and the data sidebands (each
/// normalised to 1) with the category boundaries as labelled lines, into `<stem>.png|svg`.
pub fn score_plot(c: &Categories, exp: &Experiment, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (1000, 650), |root| draw_scores(root, c, exp))
}

fn draw_scores<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Categories,
    exp: &Experiment,
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
    let n = c.score_signal.len().max(1);
    let steps = |v: &[f64]| -> Vec<(f64, f64)> {
        v.iter()
            .enumerate()
            .flat_map(|(i, &y)| [(i as f64 / n as f64, y), ((i + 1) as f64 / n as f64, y)])
            .collect()
    };
    let (s, b) = (
        steps(&norm(&c.score_signal)),
        steps(&norm(&c.score_background)),
    );
    // Room above the plotting area for the boundaries' values.
    let frame = Frame {
        top: 50,
        ..Frame::PLOT
    };
    let size = frame.plot_size(&root)?;
    let label = exp.label(Place::TopLeft, &["Held-out scores".to_string()]);
    let legend = TextBox::new(Place::TopRight)
        .with(Key::Line(FIT), "Signal MC")
        .with(Key::Line(BKG), "Data sidebands")
        .with(Key::Dashed(GUIDE), "Category boundary")
        .filled();
    let boxes = [label.extent(&root, size)?, legend.extent(&root, size)?];
    let ymax = headroom(s.iter().chain(&b).copied(), &boxes).max(1e-6);
    let mut chart = frame.chart(&root, 0.0..1.0, 0.0..ymax)?;
    let y_title = format!("Fraction of events / {}", bin_width(1.0 / n as f64));
    frame
        .mesh(&mut chart, ("Classifier score", &y_title))
        .draw()
        .map_err(err)?;
    for &edge in &c.boundaries {
        draw_curve(
            &mut chart,
            vec![(edge, 0.0), (edge, ymax)],
            Key::Dashed(GUIDE),
        )?;
    }
    draw_curve(&mut chart, b, Key::Line(BKG))?;
    draw_curve(&mut chart, s, Key::Line(FIT))?;
    // Each boundary's value above its line; one that would touch its neighbour goes a row up.
    let style =
        TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    let base = root.get_base_pixel();
    let mut right_edge = [i32::MIN; 2];
    for &edge in &c.boundaries {
        let text = format!("{edge:.3}");
        let w = root.estimate_text_size(&text, &style).map_err(err)?.0 as i32;
        let (px, py) = chart.backend_coord(&(edge, ymax));
        let row = usize::from(px - w / 2 <= right_edge[0] + 4);
        right_edge[row] = px + w / 2;
        let at = (px - base.0, py - base.1 - 6 - 20 * row as i32);
        root.draw(&Text::new(text, at, style.clone()))
            .map_err(err)?;
    }
    finish(&chart, &[&label, &legend])?;
    root.present().map_err(err)
}

/// The held-out ROC curve with its AUC, into `<stem>.png|svg`.
pub fn roc_plot(roc: &[(f64, f64)], auc: f64, exp: &Experiment, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (760, 760), |root| draw_roc(root, roc, auc, exp))
}

fn draw_roc<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    roc: &[(f64, f64)],
    auc: f64,
    exp: &Experiment,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let frame = Frame::PLOT;
    let mut chart = frame.chart(&root, 0.0..1.0, 0.0..1.0)?;
    frame
        .mesh(&mut chart, ("Background efficiency", "Signal efficiency"))
        .draw()
        .map_err(err)?;
    draw_curve(&mut chart, vec![(0.0, 0.0), (1.0, 1.0)], Key::Dashed(GUIDE))?;
    draw_curve(&mut chart, roc.to_vec(), Key::Line(FIT))?;
    // Below the diagonal, where a classifier better than chance draws nothing.
    let label = exp
        .label(Place::BottomRight, &[])
        .with(Key::Line(FIT), format!("Held-out, AUC = {auc:.3}"))
        .with(Key::Dashed(GUIDE), "Random");
    finish(&chart, &[&label])?;
    root.present().map_err(err)
}

/// The combined expected significance against the number of categories, into
/// `<stem>.png|svg`.
pub fn z_plot(c: &Categories, exp: &Experiment, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (900, 600), |root| draw_z(root, c, exp))
}

fn draw_z<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    c: &Categories,
    exp: &Experiment,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let n = c.z_by_categories.len();
    let x = 0.5..n as f64 + 0.5;
    let pts: Vec<(f64, f64)> = c
        .z_by_categories
        .iter()
        .enumerate()
        .map(|(i, z)| ((i + 1) as f64, *z))
        .collect();
    let frame = Frame::PLOT;
    let size = frame.plot_size(&root)?;
    let label = exp.label(
        Place::TopLeft,
        &["Expected (blinded): signal MC, data sidebands".to_string()],
    );
    let boxes = [label.extent(&root, size)?];
    let ymax = headroom(
        pts.iter()
            .map(|&(i, z)| ((i - x.start) / n.max(1) as f64, z)),
        &boxes,
    );
    let mut chart = frame.chart(&root, x, 0.0..ymax.max(1e-6))?;
    let integer = |x: &f64| match (x - x.round()).abs() < 1e-6 {
        true => format!("{x:.0}"),
        false => String::new(),
    };
    frame
        .mesh(
            &mut chart,
            ("Number of categories", "Combined expected Z [σ]"),
        )
        .x_labels(n + 1)
        .x_label_formatter(&integer)
        .draw()
        .map_err(err)?;
    draw_curve(&mut chart, pts.clone(), Key::Line(BKG))?;
    chart
        .draw_series(pts.iter().map(|p| Circle::new(*p, 6, BKG.filled())))
        .map_err(err)?;
    finish(&chart, &[&label])?;
    root.present().map_err(err)
}

/// The simultaneous fit: one panel per category with its data, the fitted signal +
/// background and background, under a header with the label, the legend and the fitted μ and
/// m_H, into `<stem>.png|svg`.
pub fn categories_fit_plot(
    fits: &Fits,
    cats: &Categories,
    exp: &Experiment,
    stem: &Path,
) -> PlotResult {
    let n = fits.model.channels.len().max(1);
    let cols = n.min(3);
    let rows = n.div_ceil(cols);
    // Wide enough for the header's three boxes side by side.
    let size = ((500 * cols as u32).max(1200), HEADER + 400 * rows as u32);
    png_and_svg!(stem, size, |root| draw_categories(
        root,
        fits,
        cats,
        exp,
        (rows, cols)
    ))
}

/// Height of the categories plot's header (pixels).
const HEADER: u32 = 100;

fn draw_categories<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    fits: &Fits,
    cats: &Categories,
    exp: &Experiment,
    (rows, cols): (usize, usize),
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let model = &fits.model;
    let fit = &fits.combined;
    let mut result = TextBox::new(Place::TopRight);
    if model.blind.is_some() {
        result = result.with(Key::Text, "Blinded: μ not measured").with(
            Key::Text,
            format!("Expected Z = {:.1}σ (μ = 1)", fit.z_expected),
        );
    } else {
        result = result.with(
            Key::Text,
            format!(
                "μ = {} (m_H = {:.1} GeV)",
                pdg_round(fit.mu, fit.mu_error),
                model.signal.mass
            ),
        );
        if let Some(m) = &fit.mass {
            result = result.with(
                Key::Text,
                format!("m_H = {} GeV (μ, m_H free)", pdg_round(m.value, m.error)),
            );
        }
        if let Some(z) = fit.z {
            result = result.with(
                Key::Text,
                format!("Z = {z:.1}σ (expected {:.1}σ)", fit.z_expected),
            );
        }
    }
    let legend = fit_keys(Place::Top(0.5, INSET), exp, model.blind);
    let body = header(&root, HEADER, exp, Some(legend), result)?;

    let p = model.values(fit);
    let panels = body.split_evenly((rows, cols));
    let frame = Frame {
        top: 6,
        right: 20,
        left: 80,
        bottom: 54,
        ticks: 15,
    };
    for (k, (panel, ch)) in panels.iter().zip(&model.channels).enumerate() {
        let b = &ch.data.binning;
        let x = b.lo..b.hi;
        let total = &model.expectation(&p)[k];
        let bkg = model.background(k, &p);
        // Blinded bins neither drawn nor setting the axis range (which would show the peak).
        let data: Vec<(f64, f64, f64)> = (0..b.bins)
            .filter(|&i| {
                model
                    .blind
                    .is_none_or(|(a, c)| b.center(i) < a || b.center(i) > c)
            })
            .map(|i| (b.center(i), ch.data.sumw[i], ch.data.sumw[i].sqrt()))
            .collect();
        let (lo, hi) = cats.categories.get(k).map_or((0.0, 1.0), |c| c.score);
        let area = panel
            .titled(
                &format!("Category {}: score {lo:.3}–{hi:.3}", k + 1),
                ("sans-serif", 18),
            )
            .map_err(err)?;
        let size = frame.plot_size(&area)?;
        let window = model.blind.map(|w| blinded_label(w, &x, &[], size.1));
        let boxes = match &window {
            Some(w) => vec![w.extent(&area, size)?],
            None => vec![],
        };
        let frac = |v: f64| (v - b.lo) / (b.hi - b.lo);
        let ymax = headroom(
            data.iter()
                .map(|d| (frac(d.0), d.1 + d.2))
                .chain((0..b.bins).map(|i| (frac(b.center(i)), total[i]))),
            &boxes,
        );
        let y = 0.0..ymax.max(1.0);
        let mut chart = frame.chart(&area, x, y.clone())?;
        frame
            .mesh(
                &mut chart,
                (MASS_AXIS, &format!("Events / {} GeV", bin_width(b.width()))),
            )
            .x_labels(6)
            .y_labels(6)
            .draw()
            .map_err(err)?;
        let line = |v: &[f64]| (0..b.bins).map(|i| (b.center(i), v[i])).collect::<Vec<_>>();
        match model.blind {
            Some(w) => {
                shade(&mut chart, w, &y)?;
                // Blinded, μ is 0: the whole model is the background-only fit.
                draw_curve(&mut chart, line(total), Key::Dashed(BKG))?;
            }
            None => {
                draw_curve(&mut chart, line(&bkg), Key::Dashed(BKG))?;
                draw_curve(&mut chart, line(total), Key::Line(FIT))?;
            }
        }
        draw_points(&mut chart, &data, 3)?;
        finish(&chart, &window.iter().collect::<Vec<_>>())?;
    }
    root.present().map_err(err)
}

/// One parameter's pulls from toys: their histogram with the unit Gaussian scaled to the
/// number of toys, and the fitted mean and width, into `<stem>.png|svg`.
pub fn pull_plot(pull: &Pull, exp: &Experiment, stem: &Path) -> PlotResult {
    png_and_svg!(stem, (900, 650), |root| draw_pulls(root, pull, exp))
}

fn draw_pulls<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    pull: &Pull,
    exp: &Experiment,
) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let n = pull.values.len();
    let (lo, hi) = (-5.0, 5.0);
    let width = if n < 400 { 0.5 } else { 0.25 };
    let bins = ((hi - lo) / width) as usize;
    let mut counts = vec![0.0; bins];
    for v in &pull.values {
        let i = ((v - lo) / width).floor();
        if i >= 0.0 && (i as usize) < bins {
            counts[i as usize] += 1.0;
        }
    }
    let outside = n - counts.iter().sum::<f64>() as usize;
    let gauss: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / 200.0;
            let phi = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (x, n as f64 * width * phi)
        })
        .collect();
    let frame = Frame::PLOT;
    let size = frame.plot_size(&root)?;
    let label = exp.label(Place::TopLeft, &[format!("{n} toys with a good fit")]);
    let mut legend = TextBox::new(Place::TopRight)
        .with(Key::Band(TOYS), "Toys")
        .with(Key::Line(FIT), "Unit Gaussian")
        .with(
            Key::Text,
            format!("Mean = {}", pdg_round(pull.mean, pull.mean_error)),
        )
        .with(
            Key::Text,
            format!("Width = {}", pdg_round(pull.width, pull.width_error)),
        );
    if outside > 0 {
        legend = legend.with(Key::Text, format!("{outside} outside ±5"));
    }
    let boxes = [label.extent(&root, size)?, legend.extent(&root, size)?];
    let frac = |x: f64| (x - lo) / (hi - lo);
    let tops = counts.iter().enumerate().flat_map(|(i, &c)| {
        [
            (frac(lo + i as f64 * width), c),
            (frac(lo + (i + 1) as f64 * width), c),
        ]
    });
    let ymax = headroom(tops.chain(gauss.iter().map(|&(x, y)| (frac(x), y))), &boxes).max(1.0);
    let mut chart = frame.chart(&root, lo..hi, 0.0..ymax)?;
    let x_title = format!("Pull of {}: (fitted − true) / error", pull.param);
    frame
        .mesh(
            &mut chart,
            (&x_title, &format!("Toys / {}", bin_width(width))),
        )
        .draw()
        .map_err(err)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, c)], TOYS.filled())
        }))
        .map_err(err)?;
    draw_curve(&mut chart, gauss, Key::Line(FIT))?;
    finish(&chart, &[&label, &legend])?;
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_rounded_to_their_errors_by_the_pdg_rule() {
        for (value, error, want) in [
            (126.207, 0.372, "126.2 ± 0.4"),
            (434.146, 101.233, "430 ± 100"),
            (0.9888, 0.1508, "0.99 ± 0.15"),
            (1.374, 0.301, "1.37 ± 0.30"),
            (67404.85, 277.88, "67400 ± 280"),
            (0.5, 0.0962, "0.50 ± 0.10"),
            (125.58, 0.998, "125.6 ± 1.0"),
            (-0.046, 0.121, "-0.05 ± 0.12"),
            (-0.004, 0.121, "0.00 ± 0.12"),
            (0.5, 0.0, "0.5000"),
        ] {
            assert_eq!(pdg_round(value, error), want, "{value} ± {error}");
        }
    }

    #[test]
    fn the_label_gives_the_luminosity_in_inverse_femtobarn_to_three_digits() {
        let exp = |synthetic, lumi_pb| Experiment { synthetic, lumi_pb };
        assert_eq!(exp(true, 10064.0).name(), "ATLAS Open Data (SYNTHETIC)");
        assert_eq!(exp(false, 10064.0).name(), "ATLAS Open Data");
        assert_eq!(
            exp(true, 10064.0).conditions(),
            "√s = 13 TeV, ∫L dt = 10.1 fb⁻¹"
        );
        assert_eq!(
            exp(false, 36100.0).conditions(),
            "√s = 13 TeV, ∫L dt = 36.1 fb⁻¹"
        );
        assert_eq!(
            exp(false, 139_000.0).conditions(),
            "√s = 13 TeV, ∫L dt = 139 fb⁻¹"
        );
        assert_eq!(
            exp(false, 9996.0).conditions(),
            "√s = 13 TeV, ∫L dt = 10.0 fb⁻¹"
        );
    }

    #[test]
    fn bin_widths_have_no_trailing_zeros() {
        assert_eq!(bin_width(1.0), "1");
        assert_eq!(bin_width(0.5), "0.5");
        assert_eq!(bin_width(2.5), "2.5");
        assert_eq!(bin_width(55.0 / 30.0), "1.83");
        assert_eq!(bin_width(0.005), "0.005");
    }

    #[test]
    fn headroom_keeps_points_below_the_boxes_above_them() {
        // A box over the left third reaching 30 % down: a point under it stays below 62 %.
        let boxes = [[0.0, 0.33, 0.3]];
        let top = headroom([(0.1, 100.0), (0.9, 120.0)], &boxes);
        assert!(
            100.0 / top <= 0.62 + 1e-12 && 120.0 / top <= 0.92 + 1e-12,
            "{top}"
        );
    }
}

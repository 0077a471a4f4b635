//! What the panels draw, as data the export menu can write: plots (`Figure`) to SVG and CSV,
//! tables to CSV, Markdown and LaTeX. Panels build a figure, draw it with [`Figure::draw`] and
//! register it, so the file holds exactly what is on screen.

use egui::Color32;
use egui_plot::{HoverPosition, Legend, Line, LineStyle, Plot, PlotPoints, PlotUi, Points, VLine};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    Line {
        width: f32,
    },
    Dashed,
    /// The raw series behind a smoothed one.
    Faint,
    Points {
        radius: f32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: Color32,
    pub style: Style,
    pub points: Vec<[f64; 2]>,
}

impl Series {
    pub fn line(name: impl Into<String>, colour: Color32, points: Vec<[f64; 2]>) -> Self {
        Self { name: name.into(), colour, style: Style::Line { width: 1.5 }, points }
    }
    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }
}

/// A plot: its series, axis labels and a marked x (the scrubbed step).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File-name stem, e.g. `loss-curves`.
    pub name: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub marker_x: Option<f64>,
    /// Points always in view (a NaN coordinate includes nothing on that axis).
    pub include: Vec<[f64; 2]>,
    /// The y values are log10 of what they show: axes, hover and files say the values
    /// themselves (0.01, not −2).
    pub log_y: bool,
}

impl Figure {
    pub fn new(name: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self { name: name.into(), x_label: x_label.into(), y_label: y_label.into(), series: Vec::new(), marker_x: None, include: Vec::new(), log_y: false }
    }

    /// The y values are log10 of what they show.
    pub fn log_y(mut self, log: bool) -> Self {
        self.log_y = log;
        self
    }

    /// A y as the reader sees it (the value itself on a log axis).
    fn shown_y(&self, y: f64) -> f64 {
        if self.log_y { 10f64.powf(y) } else { y }
    }

    fn y_label_shown(&self) -> String {
        if self.log_y { format!("{} (log scale)", self.y_label) } else { self.y_label.clone() }
    }

    /// The egui plot of this figure (legend, labels, scrub marker); `plot` adjusts the `Plot`.
    pub fn draw<R>(
        &self,
        id: impl egui::AsIdSalt,
        ui: &mut egui::Ui,
        plot: impl FnOnce(Plot<'_>) -> Plot<'_>,
        extra: impl FnOnce(&mut PlotUi<'_>) -> R,
    ) -> egui_plot::PlotResponse<R> {
        let mut p = Plot::new(id).legend(Legend::default()).x_axis_label(self.x_label.clone()).y_axis_label(self.y_label_shown());
        if self.log_y {
            p = p.y_grid_spacer(log_grid).y_axis_formatter(|mark, _| significant(10f64.powf(mark.value))).label_formatter(|pos| {
                let (name, at) = match pos {
                    HoverPosition::NearDataPoint { plot_name, position, .. } => (*plot_name, position),
                    HoverPosition::Elsewhere { position } => ("", position),
                };
                Some(format!("{name}\nx = {:.0}\ny = {}", at.x, significant(10f64.powf(at.y))).trim_start().to_string())
            });
        }
        for &[x, y] in &self.include {
            if x.is_finite() {
                p = p.include_x(x);
            }
            if y.is_finite() {
                p = p.include_y(y);
            }
        }
        plot(p).show(ui, |pu| {
            for s in &self.series {
                let pts = PlotPoints::from(s.points.clone());
                match s.style {
                    Style::Line { width } => pu.line(Line::new(s.name.clone(), pts).color(s.colour).width(width)),
                    Style::Dashed => pu.line(Line::new(s.name.clone(), pts).color(s.colour).style(LineStyle::dashed_loose())),
                    Style::Faint => pu.line(Line::new("", pts).color(s.colour.gamma_multiply(0.25)).allow_hover(false)),
                    // Lines carry the hover; a point cloud of 10k would make every frame search it.
                    Style::Points { radius } => pu.points(Points::new(s.name.clone(), pts).color(s.colour).radius(radius).allow_hover(false)),
                }
            }
            if let Some(x) = self.marker_x {
                pu.vline(VLine::new("scrub", x).color(Color32::GRAY));
            }
            extra(pu)
        })
    }

    /// Long format: one `series,x,y` row per point.
    pub fn csv(&self) -> String {
        let mut out = format!("series,{},{}\n", csv_field(&self.x_label), csv_field(&self.y_label));
        for s in &self.series {
            let name = if s.name.is_empty() { "raw" } else { s.name.as_str() };
            for [x, y] in &s.points {
                out.push_str(&format!("{},{x},{}\n", csv_field(name), self.shown_y(*y)));
            }
        }
        out
    }

    /// A standalone SVG of the plot: axes with ticks, labels, legend, the series.
    pub fn svg(&self) -> String {
        let (w, h) = (720.0, 440.0);
        let (left, right, top, bottom) = (70.0, 190.0, 20.0, 50.0);
        let finite = |p: &&[f64; 2]| p[0].is_finite() && p[1].is_finite();
        let pts = self.series.iter().flat_map(|s| s.points.iter().filter(finite)).chain(self.include.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for p in pts {
            (x0, x1, y0, y1) = (x0.min(p[0]), x1.max(p[0]), y0.min(p[1]), y1.max(p[1]));
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1e-12 {
            (x0, x1) = (x0 - 0.5, x1 + 0.5);
        }
        if y1 - y0 < 1e-12 {
            (y0, y1) = (y0 - 0.5, y1 + 0.5);
        }
        let (pw, ph) = (w - left - right, h - top - bottom);
        let sx = |x: f64| left + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| top + ph - (y - y0) / (y1 - y0) * ph;
        let mut o =
            format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#);
        o.push_str(&format!(
            r#"<rect width="{w}" height="{h}" fill="white"/><rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        ));
        for t in ticks(x0, x1) {
            let x = sx(t);
            o.push_str(&format!(
                r##"<line x1="{x:.2}" y1="{}" x2="{x:.2}" y2="{}" stroke="#ddd"/><text x="{x:.2}" y="{}" text-anchor="middle">{}</text>"##,
                top,
                top + ph,
                top + ph + 16.0,
                tick_label(t)
            ));
        }
        let y_ticks = if self.log_y { log_ticks(y0, y1) } else { ticks(y0, y1) };
        for t in y_ticks {
            let y = sy(t);
            o.push_str(&format!(
                r##"<line x1="{left}" y1="{y:.2}" x2="{}" y2="{y:.2}" stroke="#ddd"/><text x="{}" y="{:.2}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                if self.log_y { significant(10f64.powf(t)) } else { tick_label(t) }
            ));
        }
        o.push_str(&format!(r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#, left + pw / 2.0, h - 12.0, xml(&self.x_label)));
        o.push_str(&format!(r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#, top + ph / 2.0, xml(&self.y_label_shown())));
        if let Some(m) = self.marker_x.filter(|m| (x0..=x1).contains(m)) {
            o.push_str(&format!(r##"<line x1="{0:.2}" y1="{top}" x2="{0:.2}" y2="{1}" stroke="#888" stroke-dasharray="2 3"/>"##, sx(m), top + ph));
        }
        let mut legend = 0;
        // Faint (raw) series first, so that every other series is drawn over them.
        let order = self.series.iter().filter(|s| s.style == Style::Faint).chain(self.series.iter().filter(|s| s.style != Style::Faint));
        for s in order {
            // White (the dark theme's emphasis) would vanish on the white page: black instead.
            // Faint is the colour mixed 70 % towards white, which every SVG renderer draws.
            let white = s.colour.r() > 240 && s.colour.g() > 240 && s.colour.b() > 240;
            let faint = |v: u8| if s.style == Style::Faint { (v as f32 * 0.3 + 255.0 * 0.7).round() as u8 } else { v };
            let c = if white { "#000000".to_string() } else { format!("#{:02x}{:02x}{:02x}", faint(s.colour.r()), faint(s.colour.g()), faint(s.colour.b())) };
            let path: Vec<String> = s.points.iter().filter(finite).map(|p| format!("{:.2},{:.2}", sx(p[0]), sy(p[1]))).collect();
            match s.style {
                Style::Points { radius } => {
                    for p in s.points.iter().filter(finite) {
                        o.push_str(&format!(r#"<circle cx="{:.2}" cy="{:.2}" r="{radius}" fill="{c}"/>"#, sx(p[0]), sy(p[1])));
                    }
                }
                style => {
                    let extra = match style {
                        Style::Dashed => r#" stroke-dasharray="6 4""#.to_string(),
                        Style::Faint => r#" stroke-width="0.75""#.to_string(),
                        Style::Line { width } => format!(r#" stroke-width="{width}""#),
                        Style::Points { .. } => String::new(),
                    };
                    o.push_str(&format!(r#"<polyline fill="none" stroke="{c}"{extra} points="{}"/>"#, path.join(" ")));
                }
            }
            if !s.name.is_empty() && s.style != Style::Faint {
                let y = top + 8.0 + 16.0 * legend as f64;
                legend += 1;
                o.push_str(&format!(
                    r#"<rect x="{}" y="{}" width="14" height="4" fill="{c}"/><text x="{}" y="{}">{}</text>"#,
                    left + pw + 10.0,
                    y - 2.0,
                    left + pw + 30.0,
                    y + 3.0,
                    xml(&s.name)
                ));
            }
        }
        o.push_str("</svg>\n");
        o
    }
}

/// A table as shown: header and rows of text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn csv(&self) -> String {
        std::iter::once(&self.header).chain(&self.rows).map(|r| r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(",") + "\n").collect()
    }

    pub fn markdown(&self) -> String {
        let row = |r: &Vec<String>| format!("| {} |\n", r.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
        let mut o = row(&self.header);
        o.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        self.rows.iter().for_each(|r| o.push_str(&row(r)));
        o
    }

    /// A `tabular` (booktabs rules), first column left, the rest right-aligned.
    pub fn latex(&self) -> String {
        let esc = |s: &String| {
            s.chars()
                .map(|c| match c {
                    '_' | '%' | '&' | '#' | '$' | '{' | '}' => format!("\\{c}"),
                    '—' => "--".into(),
                    c => c.to_string(),
                })
                .collect::<String>()
        };
        let row = |r: &Vec<String>| format!("{} \\\\\n", r.iter().map(esc).collect::<Vec<_>>().join(" & "));
        let mut o = format!("\\begin{{tabular}}{{l{}}}\n\\toprule\n", "r".repeat(self.header.len().saturating_sub(1)));
        o.push_str(&row(&self.header));
        o.push_str("\\midrule\n");
        self.rows.iter().for_each(|r| o.push_str(&row(r)));
        o.push_str("\\bottomrule\n\\end{tabular}\n");
        o
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Ticks of a log10 axis over [a, b] (log10 values) at round values: whole decades over a wide
/// range, 1-2-5 × 10^k over a few decades, evenly spaced values when zoomed into one.
fn log_ticks(a: f64, b: f64) -> Vec<f64> {
    if !(a.is_finite() && b.is_finite() && b > a) {
        return Vec::new();
    }
    if b - a > 3.0 {
        let step = ((b - a) / 6.0).ceil();
        return ((a / step).ceil() as i64..=(b / step).floor() as i64).map(|k| k as f64 * step).collect();
    }
    let round: Vec<f64> = (a.floor() as i64..=b.ceil() as i64)
        .flat_map(|k| [1.0, 2.0, 5.0].map(|m: f64| m.log10() + k as f64))
        .filter(|v| (a - 1e-9..=b + 1e-9).contains(v))
        .collect();
    if round.len() >= 3 {
        return round;
    }
    ticks(10f64.powf(a), 10f64.powf(b)).into_iter().filter(|v| *v > 0.0).map(f64::log10).collect()
}

/// egui_plot's grid on a log10 axis: the marks of `log_ticks`.
fn log_grid(input: egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    let (a, b) = input.bounds;
    let values = log_ticks(a, b);
    // Marks are not evenly spaced: all drawn alike, at the mean spacing.
    let step_size = (b - a) / values.len().max(1) as f64;
    values.into_iter().map(|value| egui_plot::GridMark { value, step_size }).collect()
}

/// A value with three significant digits, without an exponent for 1e-4 ≤ |v| < 1e6.
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor();
    if !(-4.0..6.0).contains(&mag) {
        return format!("{v:.2e}");
    }
    let decimals = (2.0 - mag).max(0.0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// About five round ticks (1, 2 or 5 × 10^k apart) inside [a, b].
fn ticks(a: f64, b: f64) -> Vec<f64> {
    let raw = (b - a) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (a / step).ceil() as i64;
    let last = (b / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn tick_label(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig() -> Figure {
        let mut f = Figure::new("loss", "step", "loss");
        f.series.push(Series::line("run a, mse", Color32::from_rgb(255, 0, 0), vec![[0.0, 1.0], [10.0, 0.5]]));
        f.series.push(Series::line("", Color32::from_rgb(255, 0, 0), vec![[0.0, 1.2]]).style(Style::Faint));
        f.marker_x = Some(5.0);
        f
    }

    #[test]
    fn csv_is_long_format_with_quoted_names() {
        assert_eq!(fig().csv(), "series,step,loss\n\"run a, mse\",0,1\n\"run a, mse\",10,0.5\nraw,0,1.2\n");
    }

    #[test]
    fn svg_maps_data_to_the_plot_area() {
        let svg = fig().svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        // x ∈ [0, 10] → [70, 530]; y ∈ [0.5, 1.2] → [390, 20]: (10, 0.5) is the bottom-right corner.
        assert!(svg.contains(r#"points="70.00,125.71 530.00,390.00""#), "{svg}");
        // The scrub marker at x = 5, the legend names the line but not the faint raw series.
        assert!(svg.contains(r#"x1="300.00""#));
        assert_eq!(svg.matches("<text x=\"560\"").count(), 1);
        // The raw series is drawn first, in red mixed 70 % towards white.
        assert!(svg.find("#ffb3b3").unwrap() < svg.find("#ff0000").unwrap(), "{svg}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let labels: Vec<String> = ticks(0.13, 0.61).into_iter().map(tick_label).collect();
        assert_eq!(labels, ["0.2", "0.3", "0.4", "0.5", "0.6"]);
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(-0.0), "0");
    }

    /// A log axis says the values: 0.01, not −2, on screen, in the SVG and in the CSV.
    #[test]
    fn a_log_axis_shows_values_not_exponents() {
        let label = |a: f64, b: f64| log_ticks(a, b).into_iter().map(|t| significant(10f64.powf(t))).collect::<Vec<_>>();
        assert_eq!(label(-2.0, 0.0), ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]);
        assert_eq!(label(-6.5, 0.5), ["1.00e-6", "0.0001", "0.01", "1"]);
        assert_eq!(label(-1.3, -0.9), ["0.06", "0.08", "0.1", "0.12"]);
        assert_eq!((significant(0.031622), significant(1234.6), significant(2.0)), ("0.0316".into(), "1235".into(), "2".into()));
        let mut f = Figure::new("loss", "step", "loss").log_y(true);
        f.series.push(Series::line("mse", Color32::RED, vec![[0.0, -2.0], [10.0, 0.0]]));
        assert_eq!(f.csv(), "series,step,loss\nmse,0,0.01\nmse,10,1\n");
        let svg = f.svg();
        assert!(svg.contains(">0.01</text>") && svg.contains(">0.1</text>") && svg.contains(">loss (log scale)</text>"), "{svg}");
        assert!(!svg.contains(">-2</text>") && !svg.contains(">-1</text>"), "{svg}");
    }

    #[test]
    fn tables_as_csv_markdown_and_latex() {
        let t = Table {
            name: "metrics".into(),
            header: vec!["".into(), "run_a".into()],
            rows: vec![vec!["FID".into(), "12.5".into()], vec!["Few FID".into(), "—".into()]],
        };
        assert_eq!(t.csv(), ",run_a\nFID,12.5\nFew FID,—\n");
        assert_eq!(t.markdown(), "|  | run_a |\n|---|---|\n| FID | 12.5 |\n| Few FID | — |\n");
        assert_eq!(
            t.latex(),
            "\\begin{tabular}{lr}\n\\toprule\n & run\\_a \\\\\n\\midrule\nFID & 12.5 \\\\\nFew FID & -- \\\\\n\\bottomrule\n\\end{tabular}\n"
        );
    }
}

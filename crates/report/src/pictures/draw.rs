//! Figures drawn as SVG with plotters' SVG backend (text is SVG text in a
//! generic sans-serif family: no fonts or system libraries are needed, and
//! the viewer's fonts render it).

use std::ops::Range;

use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figures::{Figure, Panel, Plot, XAxis};

/// Series colours: the Okabe-Ito palette, told apart with the common forms
/// of colour blindness, then plotters' 99-colour palette.
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// The stroke width of data lines; axes and ticks are 1 (tests count the
/// data lines by it).
pub const SERIES_STROKE: u32 = 2;

fn colour(index: usize) -> RGBColor {
    match COLOURS.get(index) {
        Some(&c) => c,
        None => {
            let (r, g, b) = Palette99::pick(index - COLOURS.len()).rgb();
            RGBColor(r, g, b)
        }
    }
}

const FONT: &str = "sans-serif";
const SINGLE_PANEL: (u32, u32) = (720, 440);
const SMALL_PANEL: (u32, u32) = (420, 300);
const MAX_COLUMNS: usize = 3;
const TITLE_BAND: u32 = 52;
const LEGEND_LINE: u32 = 20;
/// Pixel size of the values written over bars.
const BAR_LABEL_PIXELS: u32 = 8;

/// A rough width of text in pixels, to wrap the legend (the SVG viewer
/// measures the real one).
fn text_width(text: &str, size: u32) -> u32 {
    text.chars().count() as u32 * size * 11 / 20
}

/// The legend's entries laid out in lines across `width`: (line, x) each.
fn legend_layout(figure: &Figure, width: u32) -> Vec<(u32, u32)> {
    let mut placed = Vec::new();
    let (mut line, mut x) = (0, 16 + text_width(&figure.legend_title, 12) + 12);
    for entry in &figure.legend {
        let w = 22 + text_width(entry, 12) + 18;
        if x + w > width && x > 16 {
            line += 1;
            x = 16;
        }
        placed.push((line, x));
        x += w;
    }
    placed
}

/// The figure as an SVG document.
pub fn svg(figure: &Figure) -> Result<String, String> {
    let count = figure.panels.len().max(1);
    let columns = count.min(MAX_COLUMNS);
    let rows = count.div_ceil(columns);
    let (panel_w, panel_h) = if count == 1 { SINGLE_PANEL } else { SMALL_PANEL };
    let width = panel_w * columns as u32;
    let layout = legend_layout(figure, width);
    let legend_lines = layout.last().map_or(0, |(line, _)| line + 1);
    let header = TITLE_BAND + LEGEND_LINE * legend_lines + 8;
    // Upright tick labels take a taller band under a panel: the panel
    // grows by it, so its plot keeps its height.
    let extra = figure
        .panels
        .iter()
        .filter_map(|panel| match &panel.x {
            XAxis::Ticks { ticks, .. } => upright_ticks(ticks, panel_w).map(|(_, band)| band.saturating_sub(48)),
            XAxis::Continuous { .. } => None,
        })
        .max()
        .unwrap_or(0);
    let panel_h = panel_h + extra;
    let height = header + panel_h * rows as u32;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw(&root, figure, &layout, header, (rows, columns)).map_err(|e| format!("{}: {e}", figure.file))?;
        root.present().map_err(|e| format!("{}: {e}", figure.file))?;
    }
    Ok(out)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(root: &Area, figure: &Figure, layout: &[(u32, u32)], header: u32, grid: (usize, usize)) -> DrawResult {
    root.fill(&WHITE)?;
    let (width, _) = root.dim_in_pixel();
    let centre = |size: u32| TextStyle::from((FONT, size).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(figure.title.clone(), (width as i32 / 2, 8), centre(20)))?;
    root.draw(&Text::new(figure.source.clone(), (width as i32 / 2, 32), centre(15).color(&RGBColor(80, 80, 80))))?;
    let left = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let legend_y = |line: u32| (TITLE_BAND + LEGEND_LINE * line + LEGEND_LINE / 2) as i32;
    if !figure.legend.is_empty() {
        root.draw(&Text::new(format!("{}:", figure.legend_title), (16, legend_y(0)), left.clone()))?;
    }
    for (index, (entry, &(line, x))) in figure.legend.iter().zip(layout).enumerate() {
        let (x, y) = (x as i32, legend_y(line));
        root.draw(&Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour(index).filled()))?;
        root.draw(&Text::new(entry.clone(), (x + 22, y), left.clone()))?;
    }
    let (_, body) = root.split_vertically(header);
    for (panel, area) in figure.panels.iter().zip(body.split_evenly(grid)) {
        draw_panel(&area, panel)?;
    }
    Ok(())
}

/// The x range a panel needs, and its y maximum.
fn extent(panel: &Panel) -> ((f64, f64), f64) {
    let mut xs: Vec<f64> = Vec::new();
    let mut ys: Vec<f64> = Vec::new();
    match &panel.plot {
        Plot::Lines(lines) | Plot::Steps(lines) => {
            for &(x, y) in lines.iter().flatten() {
                xs.push(x);
                ys.push(y);
            }
        }
        Plot::Bars(groups) => ys.extend(groups.iter().flatten().flatten()),
    }
    if let XAxis::Ticks { ticks, .. } = &panel.x {
        xs.extend(ticks.iter().map(|(x, _)| *x));
    }
    let low = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let high = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = if low.is_finite() { (low, high) } else { (0.0, 1.0) };
    let x = match (&panel.x, &panel.plot) {
        // Bars and spaced ticks: half a step of room either side.
        (XAxis::Ticks { .. }, Plot::Bars(_)) => (low - 0.5, high + 0.5),
        (XAxis::Ticks { .. }, _) => {
            let pad = ((high - low) * 0.06).max(0.25);
            (low - pad, high + pad)
        }
        // A distribution starts from zero, so the first step shows.
        (XAxis::Continuous { .. }, _) => (low.min(0.0), if high > low.min(0.0) { high * 1.04 } else { high + 1.0 }),
    };
    let y_max = match panel.plot {
        Plot::Steps(_) => 1.0,
        _ => ys.iter().copied().fold(0.0, f64::max),
    };
    (x, if y_max > 0.0 { y_max * 1.08 } else { 1.0 })
}

/// Pixel size of tick labels.
const TICK_LABEL_PIXELS: u32 = 14;
/// The most characters a tick label set upright keeps (the rest is cut,
/// ending in an ellipsis; the axis label names what the values are).
const UPRIGHT_LABEL_CHARS: usize = 40;

/// Tick labels that do not fit side by side under the panel's `width`
/// are set upright (turned a quarter), cut to `UPRIGHT_LABEL_CHARS`;
/// returns the labels and the height their band needs (`None`: as they
/// are).
fn upright_ticks(ticks: &[(f64, String)], width: u32) -> Option<(Vec<(f64, String)>, u32)> {
    let plot_width = width.saturating_sub(10 + 18 + 72);
    let slot = plot_width / ticks.len().max(1) as u32;
    let widest = ticks.iter().map(|(_, label)| text_width(label, TICK_LABEL_PIXELS)).max()?;
    if widest + 6 <= slot {
        return None;
    }
    let cut = |label: &str| {
        // TOML's spacing in tables (`{ vm = 0, pages = 0 }`) is dropped.
        let label = label.replace(" = ", "=").replace("{ ", "{").replace(" }", "}");
        match label.char_indices().nth(UPRIGHT_LABEL_CHARS - 1) {
            Some((at, _)) if label.chars().count() > UPRIGHT_LABEL_CHARS => format!("{}…", &label[..at]),
            _ => label,
        }
    };
    let ticks: Vec<(f64, String)> = ticks.iter().map(|(x, label)| (*x, cut(label))).collect();
    let longest = ticks.iter().map(|(_, label)| text_width(label, TICK_LABEL_PIXELS)).max().unwrap_or(0);
    Some((ticks, longest + 36))
}

fn draw_panel(area: &Area, panel: &Panel) -> DrawResult {
    let ((x_low, x_high), y_high) = extent(panel);
    let mut x_ticks: Vec<(f64, String)> = match &panel.x {
        XAxis::Continuous { .. } => Vec::new(),
        XAxis::Ticks { ticks, .. } => ticks.clone(),
    };
    let upright = upright_ticks(&x_ticks, area.dim_in_pixel().0);
    let mut x_band = 48;
    if let Some((cut, band)) = upright.clone() {
        x_ticks = cut;
        x_band = band;
    }
    let mut builder = ChartBuilder::on(area);
    builder.margin(10).margin_right(18).x_label_area_size(x_band).y_label_area_size(72);
    if !panel.title.is_empty() {
        builder.caption(&panel.title, (FONT, 16));
    }
    let x_label = match &panel.x {
        XAxis::Continuous { label } | XAxis::Ticks { label, .. } => label.as_str(),
    };
    let x_name = |x: &f64| match &panel.x {
        XAxis::Continuous { .. } => short_number(*x),
        XAxis::Ticks { .. } => {
            x_ticks.iter().find(|(position, _)| (position - x).abs() < 1e-9).map(|(_, l)| l.clone()).unwrap_or_default()
        }
    };
    let x_inner: RangedCoordf64 = (x_low..x_high).into();
    let x_axis = match &panel.x {
        // Where plotters puts them: round numbers.
        XAxis::Continuous { .. } => TickedAxis { ticks: x_inner.key_points(10), inner: x_inner },
        XAxis::Ticks { .. } => TickedAxis { inner: x_inner, ticks: x_ticks.iter().map(|(x, _)| *x).collect() },
    };
    if panel.y_log {
        let (low, high) = positive_extent(panel);
        let inner: LogCoord<f64> = (low..high).log_scale().into();
        let y_axis = TickedAxis { ticks: log_ticks(low, high), inner };
        let mut chart = builder.build_cartesian_2d(x_axis, y_axis)?;
        configure(&mut chart, x_label, panel, &x_name, upright.is_some())?;
        draw_upright_labels(area, &chart, upright.as_ref().map(|(ticks, _)| ticks.as_slice()))?;
        plot(&mut chart, panel)
    } else {
        let mut chart = builder.build_cartesian_2d(x_axis, 0.0..y_high)?;
        configure(&mut chart, x_label, panel, &x_name, upright.is_some())?;
        draw_upright_labels(area, &chart, upright.as_ref().map(|(ticks, _)| ticks.as_slice()))?;
        plot(&mut chart, panel)
    }
}

/// Tick labels set upright: each read top to bottom from just under its
/// tick (drawn here: the mesh would centre a turned label on the axis).
fn draw_upright_labels<X, Y>(
    area: &Area,
    chart: &ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    ticks: Option<&[(f64, String)]>,
) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let Some(ticks) = ticks else { return Ok(()) };
    let (x_pixels, y_pixels) = chart.plotting_area().get_pixel_range();
    let (base_x, base_y) = area.get_base_pixel();
    let style = TextStyle::from((FONT, TICK_LABEL_PIXELS).into_font())
        .transform(FontTransform::Rotate90)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (x, label) in ticks {
        let px = chart.as_coord_spec().x_spec().map(x, (x_pixels.start, x_pixels.end));
        area.draw(&Text::new(label.clone(), (px - base_x, y_pixels.end + 8 - base_y), style.clone()))?;
    }
    Ok(())
}

/// Axis labels and the grid: a line per tick, no finer lines between.
fn configure<X, Y>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>,
    x_label: &str,
    panel: &Panel,
    x_name: &dyn Fn(&f64) -> String,
    upright: bool,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_label)
        .y_desc(panel.y_label.as_str())
        .max_light_lines(0)
        .label_style((FONT, TICK_LABEL_PIXELS))
        .axis_desc_style((FONT, 15))
        .x_label_formatter(x_name)
        .y_label_formatter(&|y| short_number(*y));
    let blank = |_: &f64| String::new();
    if upright {
        // Drawn by `draw_upright_labels`.
        mesh.x_label_formatter(&blank);
    }
    mesh.draw()
}

/// The decades around a panel's positive values: from the power of ten at
/// or below the smallest to the one at or above the largest.
fn positive_extent(panel: &Panel) -> (f64, f64) {
    let values = match &panel.plot {
        Plot::Lines(lines) | Plot::Steps(lines) => lines.iter().flatten().map(|&(_, y)| y).collect(),
        Plot::Bars(groups) => groups.iter().flatten().flatten().copied().collect::<Vec<f64>>(),
    };
    let low = values.iter().copied().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(0.0, f64::max);
    if low.is_finite() {
        // A value just above a power of ten would sit on the axis: a
        // quarter of room below the smallest first.
        let floor = (low / 1.25).log10().floor();
        (10f64.powf(floor), 10f64.powf(high.log10().ceil().max(floor + 1.0)))
    } else {
        (0.1, 10.0)
    }
}

/// Ticks of a logarithmic axis: the powers of ten within it, with 2 and 5
/// times each when the axis spans less than three of them.
fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let steps: &[f64] = if last - first < 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    (first..=last)
        .flat_map(|power| steps.iter().map(move |step| step * 10f64.powi(power)))
        .filter(|tick| (low..=high).contains(tick))
        .collect()
}

fn plot<X, Y>(chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<X, Y>>, panel: &Panel) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    match &panel.plot {
        Plot::Lines(lines) => {
            for (index, points) in lines.iter().enumerate() {
                let style = colour(index).stroke_width(SERIES_STROKE);
                if points.len() > 1 {
                    chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
                }
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour(index).filled())))?;
            }
        }
        Plot::Steps(lines) => {
            for (index, points) in lines.iter().enumerate() {
                let Some(&(first, _)) = points.first() else { continue };
                // Zero below the first value, then a step up at each value.
                let mut path = vec![(first, 0.0)];
                let mut level = 0.0;
                for &(x, fraction) in points {
                    path.push((x, level));
                    path.push((x, fraction));
                    level = fraction;
                }
                chart.draw_series(LineSeries::new(path, colour(index).stroke_width(SERIES_STROKE)))?;
            }
        }
        Plot::Bars(groups) => {
            // Values over the bars where they fit (bars of one panel can
            // differ by orders of magnitude): a bar's slot in pixels.
            let bars_per_group = groups.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let pixels = chart.plotting_area().get_pixel_range().0;
            let slot =
                (pixels.end - pixels.start).max(0) as u32 * 8 / 10 / (groups.len().max(1) * bars_per_group) as u32;
            // Points to pixels as plotters' SVG backend converts them.
            let label_style = TextStyle::from((FONT, f64::from(BAR_LABEL_PIXELS) / 0.806).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            for (group, bars) in groups.iter().enumerate() {
                let width = 0.8 / bars.len().max(1) as f64;
                for (index, bar) in bars.iter().enumerate() {
                    let Some(value) = *bar else { continue };
                    let left = group as f64 - 0.4 + index as f64 * width;
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(left, 0.0), (left + width * 0.92, value)],
                        colour(index).filled(),
                    )))?;
                    let label = significant(value);
                    if text_width(&label, BAR_LABEL_PIXELS) <= slot {
                        chart.draw_series(std::iter::once(Text::new(
                            label,
                            (left + width * 0.46, value),
                            label_style.clone(),
                        )))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// An axis whose ticks are exactly at the given positions (swept values,
/// bar groups, powers of ten), where plotters would pick its own.
struct TickedAxis<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for TickedAxis<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// A value over its bar, short enough to fit: two significant digits below
/// one, three from one to a hundred, whole numbers above.
fn significant(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let digits = if magnitude < 0 { 1 - magnitude } else { 2 - magnitude }.max(0) as usize;
    format!("{value:.digits$}")
}

/// Tick labels: integers as integers, others with at most four
/// significant digits.
fn short_number(value: f64) -> String {
    if value == value.round() && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let digits = (3 - value.abs().log10().floor() as i32).clamp(0, 6) as usize;
        let text = format!("{value:.digits$}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(short_number(1536.0), "1536");
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(0.123456), "0.1235");
        assert_eq!(short_number(12.5), "12.5");
        assert_eq!(short_number(0.0), "0");
        assert_eq!(significant(0.0021249), "0.0021");
        assert_eq!(significant(0.468), "0.47");
        assert_eq!(significant(3.939), "3.94");
        assert_eq!(log_ticks(0.12, 180.0), [1.0, 10.0, 100.0]);
        assert_eq!(log_ticks(0.3, 9.0), [0.5, 1.0, 2.0, 5.0]);
        assert_eq!(significant(131.7), "132");
    }

    /// A one-panel bar figure with a tick per label.
    fn bars(labels: &[String]) -> Figure {
        Figure {
            file: "f".into(),
            section: super::super::figures::Section::Comparison,
            title: "t".into(),
            source: "s".into(),
            legend_title: "l".into(),
            legend: vec!["a".into()],
            panels: vec![Panel {
                title: String::new(),
                x: XAxis::Ticks {
                    label: "x".into(),
                    ticks: labels.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect(),
                },
                y_label: "y".into(),
                y_log: false,
                plot: Plot::Bars(labels.iter().map(|_| vec![Some(1.0)]).collect()),
            }],
        }
    }

    /// The SVG's height, from its root element.
    fn height(svg: &str) -> u32 {
        let at = svg.find("height=\"").unwrap() + 8;
        svg[at..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn tick_labels_too_wide_to_sit_side_by_side_are_set_upright_and_cut() {
        let short: Vec<String> = ["4KiB", "2MiB"].iter().map(|s| s.to_string()).collect();
        let plain = svg(&bars(&short)).unwrap();
        assert!(!plain.contains("rotate(90"), "two short labels fit side by side");
        assert!(plain.contains("4KiB\n</text>"));
        // 32 groups named by three parameters, one of them a table.
        let long: Vec<String> = (0..32)
            .map(|i| format!("{}KiB, clock, [{{ vm = 0, pages = {i} }}, {{ vm = 1, pages = 144 }}]", 512 + i))
            .collect();
        let turned = svg(&bars(&long)).unwrap();
        assert_eq!(turned.matches("rotate(90").count(), 32, "every label turned");
        assert!(turned.contains("512KiB, clock, [{vm=0, pages=0}, {vm=1,…\n</text>"), "spacing dropped, cut at 40");
        assert!(height(&turned) > height(&plain), "the figure grows by the labels' band");
    }
}

//! Charts drawn with plotters: panels one above the other, sharing an x axis of seconds
//! since the burst started, each with its lines and a legend.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::RunReport;
use super::unknown_quota::{self, Run};

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

/// The naive loop's color, the stack's, and the reference lines'.
const NAIVE: RGBColor = RED;
const TOLLGATE: RGBColor = BLUE;
const REFERENCE: RGBColor = RGBColor(90, 90, 90);

/// Part 1's chart: successes and 429s per second, each with both runs.
pub(super) fn known_quota(path: &str, naive: &RunReport, tollgate: &RunReport) -> Result {
    let runs = [
        (super::Client::Naive.name(), naive, NAIVE),
        (super::Client::Tollgate.name(), tollgate, TOLLGATE),
    ];
    write(
        path,
        &[
            per_second_panel("successful responses per second", &runs, Count::Successes),
            per_second_panel("429s received per second", &runs, Count::RateLimited),
        ],
    )
}

/// Part 2's chart: successes and 429s per second of both runs, then the stack's learned
/// rate; the rates against the server's available rate.
pub(super) fn unknown_quota(path: &str, naive: &Run, stack: &Run) -> Result {
    let runs = [
        (
            unknown_quota::name(super::Client::Naive),
            &naive.report,
            NAIVE,
        ),
        (
            unknown_quota::name(super::Client::Tollgate),
            &stack.report,
            TOLLGATE,
        ),
    ];
    let seconds = runs
        .iter()
        .map(|(_, run, _)| run.elapsed.as_secs_f64().ceil())
        .fold(1.0, f64::max);
    // A step at each change of the other tenant's share.
    let available = {
        let (from, until) = (
            unknown_quota::TENANT_FROM.as_secs_f64(),
            unknown_quota::TENANT_UNTIL.as_secs_f64(),
        );
        let mut steps = vec![0.0];
        for change in [from, until] {
            if change < seconds {
                steps.extend([change - 1e-9, change]);
            }
        }
        steps.push(seconds);
        Line::dashed(
            "server's available rate",
            REFERENCE,
            steps
                .into_iter()
                .map(|t| (t, unknown_quota::available_rate(t)))
                .collect(),
        )
    };
    let mut successes =
        per_second_panel("successful responses per second", &runs, Count::Successes);
    successes.lines.push(available.clone());
    let learned = Panel {
        title: "the default stack's learned rate",
        y_desc: "requests per second",
        lines: vec![
            Line {
                name: "learned rate".to_owned(),
                color: TOLLGATE,
                dashed: false,
                points: stack
                    .learned
                    .iter()
                    .map(|&(s, rate)| (s as f64, rate))
                    .collect(),
            },
            available,
        ],
    };
    write(
        path,
        &[
            successes,
            per_second_panel("429s received per second", &runs, Count::RateLimited),
            learned,
        ],
    )
}

/// Which count of a second a panel shows.
#[derive(Clone, Copy)]
enum Count {
    Successes,
    RateLimited,
}

/// A panel with one line per run: a count of each second of its timeline.
fn per_second_panel(
    title: &'static str,
    runs: &[(&str, &RunReport, RGBColor)],
    count: Count,
) -> Panel {
    let lines = runs
        .iter()
        .map(|&(name, run, color)| Line {
            name: name.to_owned(),
            color,
            dashed: false,
            points: run
                .upstream
                .timeline()
                .into_iter()
                .map(|(second, ok, limited)| {
                    let value = match count {
                        Count::Successes => ok,
                        Count::RateLimited => limited,
                    };
                    (second as f64, value as f64)
                })
                .collect(),
        })
        .collect();
    let y_desc = match count {
        Count::Successes => "responses per second",
        Count::RateLimited => "429s per second",
    };
    Panel {
        title,
        y_desc,
        lines,
    }
}

/// One panel of a chart.
struct Panel {
    title: &'static str,
    /// What the y axis counts.
    y_desc: &'static str,
    lines: Vec<Line>,
}

/// One line of a panel, with its name in the legend.
#[derive(Clone)]
struct Line {
    name: String,
    color: RGBColor,
    /// Dashed, for a reference line.
    dashed: bool,
    /// (seconds since the burst started, value)
    points: Vec<(f64, f64)>,
}

impl Line {
    fn dashed(name: &str, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Line {
            name: name.to_owned(),
            color,
            dashed: true,
            points,
        }
    }
}

/// Writes `panels` one above the other to an SVG file at `path`, on the same seconds.
fn write(path: &str, panels: &[Panel]) -> Result {
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let seconds = panels
        .iter()
        .flat_map(|panel| &panel.lines)
        .flat_map(|line| &line.points)
        .map(|&(second, _)| second)
        .fold(1.0, f64::max);
    let height = 320 * u32::try_from(panels.len())?;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, panel) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        draw(area, panel, seconds)?;
    }
    root.present()?;
    Ok(())
}

/// Draws `panel` on `area`, from 0 to `seconds`, with room above its highest point.
fn draw(area: &DrawingArea<SVGBackend<'_>, Shift>, panel: &Panel, seconds: f64) -> Result {
    let top = panel
        .lines
        .iter()
        .flat_map(|line| &line.points)
        .map(|&(_, value)| value)
        .fold(1.0, f64::max);
    // Room above the lines for the legend.
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..seconds, 0.0..(top * 1.4).ceil())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the burst started")
        .y_desc(panel.y_desc)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for line in &panel.lines {
        let (color, style) = (line.color, line.color.stroke_width(2));
        let points = line.points.iter().copied();
        let series = if line.dashed {
            chart.draw_series(DashedLineSeries::new(points, 8, 6, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        // A dashed line's sample in the legend has a gap too.
        let gap = if line.dashed { (8, 12) } else { (10, 10) };
        series.label(line.name.as_str()).legend(move |(x, y)| {
            EmptyElement::at((x, y))
                + PathElement::new([(0, 0), (gap.0, 0)], color.stroke_width(2))
                + PathElement::new([(gap.1, 0), (20, 0)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

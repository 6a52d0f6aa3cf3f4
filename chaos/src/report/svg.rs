//! One picture per scenario: latency (p50, p99; log scale) above, error
//! rate below, over time, the fault window shaded in both.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{ChaosError, Result};
use crate::scenario::ScenarioResult;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;
/// Height of the title block.
const HEADER: u32 = 72;
const FAULT: RGBColor = RGBColor(220, 50, 47);
const P50: RGBColor = RGBColor(38, 139, 210);
const P99: RGBColor = RGBColor(203, 75, 22);
const ERRORS: RGBColor = RGBColor(211, 54, 130);
/// Latencies are drawn from 1 µs up: a log axis has no zero.
const FLOOR_MS: f64 = 0.001;

fn render_error(e: impl std::fmt::Display) -> ChaosError {
    ChaosError::Render {
        what: "svg".into(),
        message: e.to_string(),
    }
}

/// The SVG picture of one scenario's run.
pub fn render_svg(result: &ScenarioResult) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, result).map_err(render_error)?;
        root.present().map_err(render_error)?;
    }
    Ok(svg)
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn draw(root: &DrawingArea<SVGBackend<'_>, Shift>, result: &ScenarioResult) -> DrawResult {
    root.fill(&WHITE)?;
    let (header, root) = root.split_vertically(HEADER);
    let (title, lines) = titles(result);
    header.draw(&Text::new(title, (14, 8), ("sans-serif", 19).into_font()))?;
    for (i, line) in lines.into_iter().enumerate() {
        let grey = ("sans-serif", 12).into_font().color(&BLACK.mix(0.65));
        header.draw(&Text::new(line, (14, 34 + 16 * i as i32), grey))?;
    }
    let (top, bottom) = root.split_vertically((HEIGHT - HEADER) * 56 / 100);

    let buckets = &result.timeline.buckets;
    let end_s = buckets
        .last()
        .map(|b| (b.start + result.timeline.width).as_secs_f64())
        .unwrap_or(1.0)
        .max(result.elapsed.as_secs_f64())
        .max(0.001);
    let mid = |b: &crate::checker::Bucket| (b.start + result.timeline.width / 2).as_secs_f64();
    let ms = |d: std::time::Duration| (d.as_secs_f64() * 1000.0).max(FLOOR_MS);
    let with_ops: Vec<_> = buckets
        .iter()
        .filter(|b| b.ops > b.hangs && (b.p50 > std::time::Duration::ZERO))
        .collect();
    let max_ms = with_ops.iter().map(|b| ms(b.p99)).fold(1.0f64, f64::max) * 2.0;
    let window = result
        .window
        .map(|w| (w.start.as_secs_f64(), w.end.as_secs_f64()));
    let actions: Vec<f64> = result
        .actions
        .iter()
        .map(|a| a.started.as_secs_f64())
        .collect();
    let marker = FAULT.mix(0.6).stroke_width(1);

    // Latency.
    let mut latency = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .caption("latency per bucket (ms, log scale)", ("sans-serif", 15))
        .build_cartesian_2d(0f64..end_s, (FLOOR_MS * 0.9..max_ms).log_scale())?;
    latency
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("ms")
        .y_label_formatter(&|v| axis_ms(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if let Some((from, to)) = window {
        latency
            .draw_series(std::iter::once(Rectangle::new(
                [(from, FLOOR_MS * 0.9), (to, max_ms)],
                FAULT.mix(0.12).filled(),
            )))?
            .label("fault window")
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 5), (x + 15, y + 5)], FAULT.mix(0.25).filled())
            });
    }
    latency.draw_series(
        actions
            .iter()
            .map(|&at| PathElement::new([(at, FLOOR_MS * 0.9), (at, max_ms)], marker)),
    )?;
    latency
        .draw_series(LineSeries::new(
            with_ops.iter().map(|b| (mid(b), ms(b.p50))),
            P50.stroke_width(2),
        ))?
        .label("p50")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], P50.stroke_width(2)));
    latency
        .draw_series(LineSeries::new(
            with_ops.iter().map(|b| (mid(b), ms(b.p99))),
            P99.stroke_width(2),
        ))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], P99.stroke_width(2)));
    latency
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;

    // Error rate.
    let mut errors = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .caption(
            "failed or hung operations per bucket (%)",
            ("sans-serif", 15),
        )
        .build_cartesian_2d(0f64..end_s, 0f64..105f64)?;
    errors
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("%")
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if let Some((from, to)) = window {
        errors.draw_series(std::iter::once(Rectangle::new(
            [(from, 0.0), (to, 105.0)],
            FAULT.mix(0.12).filled(),
        )))?;
    }
    errors.draw_series(
        actions
            .iter()
            .map(|&at| PathElement::new([(at, 0.0), (at, 105.0)], marker)),
    )?;
    errors.draw_series(
        AreaSeries::new(
            buckets
                .iter()
                .filter(|b| b.ops > 0)
                .map(|b| (mid(b), b.error_rate())),
            0.0,
            ERRORS.mix(0.35),
        )
        .border_style(ERRORS.stroke_width(2)),
    )?;
    Ok(())
}

/// The title (scenario, verdict, counts) and the lines under it (stack
/// and seed, fault actions).
fn titles(result: &ScenarioResult) -> (String, Vec<String>) {
    let v = &result.verdict;
    let mut title = format!(
        "{} - {} - {} ops, {:.2}% available",
        result.name,
        result.verdict_label(),
        v.total.ops,
        v.availability()
    );
    if let Some(c) = &v.consistency {
        title.push_str(&format!(
            ", lost {} / stale {} / resurrected {}",
            c.lost, c.stale, c.resurrected
        ));
    }
    let faults: Vec<String> = result
        .actions
        .iter()
        .map(|a| format!("{:.2}s {}", a.started.as_secs_f64(), a.label))
        .collect();
    let mut lines = vec![format!("stack: {}; seed {}", result.store, result.seed)];
    if !faults.is_empty() {
        lines.push(format!("faults (red lines): {}", faults.join(", ")));
    }
    (title, lines)
}

/// A log-axis label: `1000`, `10`, `1`, `0.1`, `0.01`, `0.001`.
fn axis_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn axis_labels_are_short() {
        assert_eq!(super::axis_ms(1000.0), "1000");
        assert_eq!(super::axis_ms(1.0), "1");
        assert_eq!(super::axis_ms(0.1), "0.1");
        assert_eq!(super::axis_ms(0.001), "0.001");
    }
}

//! The bench's PNG: one panel per phase; in each, one group of bars per
//! configuration (Arbalest — or, when a run has both stacks, Arbalest on
//! FireEngine and on smoltcp — and Linux; medians over repetitions,
//! whiskers from min to max), with each Arbalest bar's ratio to Linux above
//! it.
//!
//! Drawn with `plotters`' bitmap backend; text uses DejaVu Sans embedded
//! in the binary (the `dejavu` crate through `ab_glyph`), so no system
//! font or fontconfig is needed.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

use super::report::{cells, columns};

const FONT: &str = "sans-serif";
const ARBALEST: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const LINUX: RGBColor = RGBColor(0xe0, 0x8a, 0x1e);
const FIREENGINE: RGBColor = RGBColor(0xc0, 0x2a, 0x2a);

fn color(column: &str) -> RGBColor {
    match column {
        "fireengine" => FIREENGINE,
        "linux" => LINUX,
        _ => ARBALEST,
    }
}

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for (style, bytes) in [(FontStyle::Normal, dejavu::sans::regular()), (FontStyle::Bold, dejavu::sans::bold())] {
            plotters::style::register_font(FONT, style, bytes).map_err(|_| "cannot load the embedded DejaVu font".to_string())?;
        }
        Ok(())
    })
    .clone()
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("plot: {e:?}")
}

/// Draws the records' figures into `path` (PNG).
pub fn plot(records: &[Value], path: &Path) -> Result<(), String> {
    register_font()?;
    let rows = cells(records);
    let series = columns(&rows);
    // Phases in order of appearance, and the configurations of each.
    let mut phases: Vec<(String, String)> = Vec::new();
    let mut configs: Vec<String> = Vec::new();
    for (config, phase, title, c) in &rows {
        if c.values().all(|x| x.values.is_empty()) {
            continue;
        }
        if !phases.iter().any(|p| &p.0 == phase) {
            phases.push((phase.clone(), title.clone()));
        }
        if !configs.contains(config) {
            configs.push(config.clone());
        }
    }
    if phases.is_empty() {
        return Err("plot: no figures to draw".into());
    }
    let cols = phases.len().min(3);
    let nrows = phases.len().div_ceil(cols);
    let (pw, ph) = (560u32, 380u32);
    let header = 70u32;
    let size = (pw * cols as u32, header + ph * nrows as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (top, body) = root.split_vertically(header);

    let first = &records[0];
    let machine = first["machine"]["summary"].as_str().unwrap_or("");
    top.draw(&Text::new("Arbalest vs Linux, identical QEMU settings (median of repetitions)", (12, 8), (FONT, 22).into_font().style(FontStyle::Bold)))
        .map_err(err)?;
    top.draw(&Text::new(machine.to_string(), (12, 38), (FONT, 13).into_font().color(&RGBColor(90, 90, 90)))).map_err(err)?;
    let lx = size.0 as i32 - 125 * series.len() as i32;
    for (i, (name, color)) in series.iter().map(|c| (c.1, self::color(c.0))).enumerate() {
        let x = lx + i as i32 * 120;
        top.draw(&Rectangle::new([(x, 12), (x + 18, 28)], color.filled())).map_err(err)?;
        top.draw(&Text::new(name.to_string(), (x + 24, 12), (FONT, 15).into_font())).map_err(err)?;
    }

    let panels = body.split_evenly((nrows, cols));
    for (panel, (phase, title)) in panels.iter().zip(&phases) {
        let mut unit = String::new();
        // (configuration index, per column (median, min, max))
        type Bar = (usize, Vec<Option<(f64, f64, f64)>>);
        let mut bars: Vec<Bar> = Vec::new();
        let stats = |c: Option<&super::report::Cell>| {
            let c = c?;
            let m = c.median()?;
            let lo = c.values.iter().copied().fold(f64::MAX, f64::min);
            let hi = c.values.iter().copied().fold(f64::MIN, f64::max);
            Some((m, lo, hi))
        };
        for (ci, cfg) in configs.iter().enumerate() {
            if let Some((_, _, _, c)) = rows.iter().find(|r| &r.0 == cfg && &r.1 == phase) {
                if let Some(u) = c.values().find_map(|x| x.unit.clone()) {
                    unit = u;
                }
                bars.push((ci, series.iter().map(|k| stats(c.get(k.0))).collect()));
            }
        }
        let ymax = bars
            .iter()
            .flat_map(|b| b.1.iter().flatten().map(|x| x.2))
            .fold(0.0f64, f64::max);
        let ymax = if ymax > 0.0 { ymax * 1.22 } else { 1.0 };
        let n = configs.len() as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{title} [{unit}]"), (FONT, 16).into_font().style(FontStyle::Bold))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(62)
            .build_cartesian_2d(0f64..n, 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_labels(6)
            .y_label_formatter(&|v| super::report::num(*v))
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        let linux = series.iter().position(|c| c.0 == "linux");
        let w = 0.76 / series.len() as f64;
        for (ci, per) in &bars {
            let x = *ci as f64;
            let lm = linux.and_then(|i| per[i]).map(|b| b.0).filter(|&m| m > 0.0);
            for (j, bar) in per.iter().enumerate() {
                let Some((m, lo, hi)) = *bar else { continue };
                let (x0, x1) = (x + 0.12 + j as f64 * w + 0.01, x + 0.12 + (j + 1) as f64 * w - 0.01);
                let color = self::color(series[j].0);
                chart.draw_series(std::iter::once(Rectangle::new([(x0, 0.0), (x1, m)], color.filled()))).map_err(err)?;
                if hi > lo {
                    let xm = (x0 + x1) / 2.0;
                    chart
                        .draw_series(std::iter::once(PathElement::new(vec![(xm, lo), (xm, hi)], BLACK.stroke_width(1))))
                        .map_err(err)?;
                }
                if let Some(lm) = lm
                    && Some(j) != linux
                {
                    let y = hi + ymax * 0.02;
                    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
                    chart
                        .draw_series(std::iter::once(Text::new(format!("×{}", ratio(m / lm)), ((x0 + x1) / 2.0, y), style)))
                        .map_err(err)?;
                }
            }
            let (px, py) = chart.backend_coord(&(x + 0.5, 0.0));
            let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(configs[*ci].clone(), (px, py + 6), style)).map_err(err)?;
        }
    }
    root.present().map_err(err)?;
    Ok(())
}

fn ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_a_png() {
        let mut recs = Vec::new();
        for (cfg, f) in [("virtio q1 smp2", 1.0), ("virtio q4 smp2", 1.5), ("igb q1 smp2", 0.8)] {
            for (phase, unit, base) in [("tcp_stream_tx", "Mbit/s", 900.0), ("tcp_rr_1", "trans/s", 5000.0)] {
                for (guest, g) in [("arbalest", 0.3), ("linux", 1.0)] {
                    for rep in 0..2 {
                        recs.push(json!({
                            "guest": guest, "config": cfg, "phase": phase, "title": phase, "status": "ok",
                            "unit": unit, "value": base * f * g * (1.0 + rep as f64 * 0.1),
                            "machine": {"summary": "test machine"},
                        }));
                    }
                }
            }
        }
        let path = std::env::temp_dir().join(format!("arbalest-plot-test-{}.png", std::process::id()));
        plot(&recs, &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.len() > 5000);
        assert!(plot(&[], &path).is_err());
        // Three columns: FireEngine, smoltcp, Linux.
        for r in recs.iter_mut().filter(|r| r["guest"] == "arbalest") {
            r["stack"] = json!("smol");
        }
        let fe: Vec<_> = recs
            .iter()
            .filter(|r| r["guest"] == "arbalest")
            .map(|r| {
                let mut r = r.clone();
                r["stack"] = json!("fireengine");
                r["value"] = json!(r["value"].as_f64().unwrap() * 1.5);
                r
            })
            .collect();
        recs.extend(fe);
        plot(&recs, &path).unwrap();
        let png = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000);
    }
}

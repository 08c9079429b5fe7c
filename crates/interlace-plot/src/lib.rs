//! Line charts written as PNG, for the reports of interlace's tools.
//!
//! Everything needed is compiled in: plotters' bitmap backend, an embedded DejaVu Sans Mono font
//! (Bitstream Vera licence, `assets/DejaVu-LICENSE`) and PNG encoding through `image`, so charts
//! render on a bare machine with no font or graphics library installed.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const FAMILY: &str = "interlace-mono";

/// A chart could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    /// The PNG being written.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, in drawing order; non-finite points are skipped.
    pub points: Vec<(f64, f64)>,
    /// Also mark every point with a dot.
    pub markers: bool,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

impl LineChart {
    /// Draws the chart into a PNG at `path`.
    pub fn save_png(&self, path: &Path) -> Result<(), PlotError> {
        let fail = |reason: String| PlotError { path: path.to_path_buf(), reason };
        // Registering twice is harmless; an error only means the bytes are not a font.
        register_font(FAMILY, FontStyle::Normal, FONT).map_err(|_| fail("embedded font is invalid".into()))?;
        let (w, h) = self.size;
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        self.draw(&mut pixels).map_err(|e| fail(e.to_string()))?;
        let image = image::RgbImage::from_raw(w, h, pixels).ok_or_else(|| fail("pixel buffer size".into()))?;
        image.save_with_format(path, image::ImageFormat::Png).map_err(|e| fail(e.to_string()))
    }

    fn finite_points(&self) -> Vec<Vec<(f64, f64)>> {
        self.series.iter().map(|s| s.points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()).collect()
    }

    fn draw(&self, pixels: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(pixels, self.size).into_drawing_area();
        root.fill(&WHITE)?;
        let all = self.finite_points();
        let (x_range, y_range) = ranges(&all);
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FAMILY, 22))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, y_range)?;
        chart.configure_mesh().x_desc(&self.x_label).y_desc(&self.y_label).label_style((FAMILY, 14)).axis_desc_style((FAMILY, 16)).draw()?;
        for (n, (series, points)) in self.series.iter().zip(all).enumerate() {
            let color = Palette99::pick(n).to_rgba();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(series.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            if series.markers {
                chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            }
        }
        chart.configure_series_labels().label_font((FAMILY, 14)).border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
        root.present()?;
        Ok(())
    }
}

/// Axis ranges covering every point with a small margin (a unit range when there is none).
fn ranges(all: &[Vec<(f64, f64)>]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = || all.iter().flatten();
    let span = |values: Vec<f64>| {
        let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        let pad = ((hi - lo) * 0.05).max(1e-3);
        (lo - pad)..(hi + pad)
    };
    (span(points().map(|p| p.0).collect()), span(points().map(|p| p.1).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_of_the_requested_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let chart = LineChart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series { label: "a".into(), points: vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5)], markers: true }],
            size: (320, 200),
        };
        chart.save_png(&path).unwrap();
        let image = image::open(&path).unwrap();
        assert_eq!((image.width(), image.height()), (320, 200));
        // Not a blank canvas: the line and text put non-white pixels on it.
        assert!(image.to_rgb8().pixels().any(|p| p.0 != [255, 255, 255]));
    }

    #[test]
    fn empty_chart_still_renders() {
        let dir = tempfile::tempdir().unwrap();
        let chart = LineChart { title: "empty".into(), x_label: "x".into(), y_label: "y".into(), series: vec![], size: (200, 100) };
        chart.save_png(&dir.path().join("e.png")).unwrap();
    }

    #[test]
    fn unwritable_path_is_an_error_naming_it() {
        let chart = LineChart { title: "t".into(), x_label: "x".into(), y_label: "y".into(), series: vec![], size: (100, 100) };
        let error = chart.save_png(Path::new("/nonexistent/dir/c.png")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/dir/c.png"));
    }
}

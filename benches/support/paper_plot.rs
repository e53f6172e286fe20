//! The chord_paper bench's figures as one SVG file, written by hand: path
//! length against ring size, and failed lookups against churn.

use std::fmt::Write;
use std::time::Duration;

/// Path length in one ring size.
#[derive(Debug)]
pub struct HopsPoint {
    /// The ring has 2^log nodes.
    pub log: u32,
    /// Mean hops of a lookup.
    pub mean: f64,
    /// 1st percentile of the hops.
    pub p1: u32,
    /// 99th percentile of the hops.
    pub p99: u32,
    /// Heap bytes the simulation holds per node once the ring is built.
    pub bytes_per_node: f64,
    /// Wall time of the whole point per node.
    pub wall_per_node: Duration,
    /// CPU time of the whole point per node.
    pub cpu_per_node: Duration,
    /// Wall time to build the ring.
    pub built: Duration,
    /// Virtual seconds it took to build.
    pub virtual_s: f64,
}

/// Lookups under one churn rate.
#[derive(Debug)]
pub struct ChurnPoint {
    /// Failures (and joins) per stabilization period.
    pub x: f64,
    /// Share of lookups that did not end at the key's live successor.
    pub failed_share: f64,
    /// Ended at another node.
    pub wrong: usize,
    /// Ended with an error or not at all.
    pub errors: usize,
    /// Lookups started (and not lost with their asker).
    pub asked: usize,
    /// Lookups whose asker died before they ended (not counted).
    pub orphaned: usize,
    /// Wall time of the point.
    pub wall: Duration,
}

/// One panel's frame: its place on the page and its data ranges.
struct Panel {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width
    }

    fn py(&self, y: f64) -> f64 {
        self.top + self.height - (y - self.y.0) / (self.y.1 - self.y.0) * self.height
    }

    /// Axes, ticks with labels, a title and axis names.
    fn frame(
        &self,
        out: &mut String,
        title: &str,
        xname: &str,
        yname: &str,
        xt: &[(f64, String)],
        yt: &[f64],
    ) {
        let (l, t, w, h) = (self.left, self.top, self.width, self.height);
        let _ = writeln!(
            out,
            r##"<rect x="{l}" y="{t}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="15">{title}</text>"##,
            l + w / 2.0,
            t - 12.0
        );
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle">{xname}</text>"##,
            l + w / 2.0,
            t + h + 38.0
        );
        let _ = writeln!(
            out,
            r##"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{yname}</text>"##,
            l - 42.0,
            t + h / 2.0
        );
        for (x, label) in xt {
            let px = self.px(*x);
            let _ = writeln!(
                out,
                r##"<line x1="{px:.1}" y1="{}" x2="{px:.1}" y2="{}" stroke="#444"/><text x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"##,
                t + h,
                t + h + 5.0,
                t + h + 19.0
            );
        }
        for y in yt {
            let py = self.py(*y);
            let _ = writeln!(
                out,
                r##"<line x1="{l}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{y}</text>"##,
                l + w,
                l - 6.0,
                py + 4.0
            );
        }
    }

    fn polyline(&self, out: &mut String, points: &[(f64, f64)], style: &str) {
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", self.px(*x), self.py(*y)))
            .collect();
        let _ = writeln!(
            out,
            r##"<polyline points="{}" fill="none" {style}/>"##,
            pts.join(" ")
        );
    }

    fn dots(&self, out: &mut String, points: &[(f64, f64)], colour: &str) {
        for (x, y) in points {
            let _ = writeln!(
                out,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"##,
                self.px(*x),
                self.py(*y)
            );
        }
    }

    fn legend(&self, out: &mut String, row: usize, colour: &str, dashed: bool, text: &str) {
        let (x, y) = (self.left + 14.0, self.top + 18.0 + 18.0 * row as f64);
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{text}</text>"##,
            x + 24.0,
            x + 30.0,
            y + 4.0
        );
    }
}

/// Both figures side by side.
pub fn svg(hops: &[HopsPoint], churn: &[ChurnPoint], churn_nodes: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="420" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(out, r##"<rect width="1000" height="420" fill="white"/>"##);

    // Path length against log2 N.
    let lo = hops.first().map_or(6, |p| p.log) as f64;
    let hi = hops.last().map_or(14, |p| p.log).max(lo as u32 + 1) as f64;
    let top = hops
        .iter()
        .map(|p| p.p99)
        .max()
        .unwrap_or(1)
        .max(hi as u32 / 2) as f64
        + 1.0;
    let a = Panel {
        left: 70.0,
        top: 50.0,
        width: 380.0,
        height: 300.0,
        x: (lo - 0.5, hi + 0.5),
        y: (0.0, top.ceil()),
    };
    let xt: Vec<(f64, String)> = (lo as u32..=hi as u32)
        .map(|l| (f64::from(l), format!("2^{l}")))
        .collect();
    let yt: Vec<f64> = (0..=top.ceil() as u32).step_by(2).map(f64::from).collect();
    a.frame(
        &mut out,
        "Path length",
        "nodes N",
        "hops per lookup",
        &xt,
        &yt,
    );
    for p in hops {
        let x = a.px(f64::from(p.log));
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#1f77b4"/>"##,
            a.py(f64::from(p.p1)),
            a.py(f64::from(p.p99))
        );
    }
    let means: Vec<(f64, f64)> = hops.iter().map(|p| (f64::from(p.log), p.mean)).collect();
    a.polyline(&mut out, &means, r##"stroke="#1f77b4" stroke-width="2""##);
    a.dots(&mut out, &means, "#1f77b4");
    let half = [(lo, lo / 2.0), (hi, hi / 2.0)];
    a.polyline(
        &mut out,
        &half,
        r##"stroke="#d62728" stroke-width="2" stroke-dasharray="6 4""##,
    );
    a.legend(
        &mut out,
        0,
        "#1f77b4",
        false,
        "mean (bars: 1st–99th percentile)",
    );
    a.legend(&mut out, 1, "#d62728", true, "½·log2 N");

    // Failed lookups against churn.
    let xmax = churn.iter().map(|p| p.x).fold(1.0, f64::max);
    let ymax = churn
        .iter()
        .map(|p| p.failed_share * 100.0)
        .fold(1.0, f64::max);
    let ystep = if ymax > 10.0 {
        5.0
    } else if ymax > 4.0 {
        1.0
    } else {
        0.5
    };
    let ytop = (ymax / ystep).ceil() * ystep;
    let b = Panel {
        left: 590.0,
        top: 50.0,
        width: 380.0,
        height: 300.0,
        x: (0.0, xmax),
        y: (0.0, ytop),
    };
    let xt: Vec<(f64, String)> = (0..=(xmax * 2.0).round() as u32)
        .map(|k| (f64::from(k) / 2.0, format!("{}", f64::from(k) / 2.0)))
        .collect();
    let yt: Vec<f64> = (0..=(ytop / ystep).round() as u32)
        .map(|k| f64::from(k) * ystep)
        .collect();
    let title = format!("Lookups under churn ({churn_nodes} nodes)");
    b.frame(
        &mut out,
        &title,
        "failures (and joins) per stabilization period",
        "failed lookups (%)",
        &xt,
        &yt,
    );
    let pts: Vec<(f64, f64)> = churn
        .iter()
        .map(|p| (p.x, p.failed_share * 100.0))
        .collect();
    b.polyline(&mut out, &pts, r##"stroke="#2ca02c" stroke-width="2""##);
    b.dots(&mut out, &pts, "#2ca02c");
    b.legend(&mut out, 0, "#2ca02c", false, "not at the live successor");
    let _ = writeln!(out, "</svg>");
    out
}

//! ltlab's own long-tailed dataset: coloured, textured shapes on a noisy background.
//!
//! Ten classes, each a (shape, colour, texture) triple. The five head classes (0–4) are
//! distinct; each tail class (5–9) shares exactly two attributes with one head class, so a model
//! that borrows head features for a tail class shows it visibly, and the borrowing can be scored
//! against the recorded ground truth. Every image is a pure function of (seed, class, index).

use super::Dataset;
use crate::error::{Error, Result};
use crate::rng::{self, Stream};
use ltlab_types::Resemblance;
use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Disc,
    Square,
    Triangle,
    Cross,
    Ring,
    Diamond,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Texture {
    Solid,
    Stripes,
    Checker,
    Dots,
}

struct ClassDef {
    name: &'static str,
    shape: Shape,
    colour: [f32; 3],
    texture: Texture,
}

const RED: [f32; 3] = [0.9, 0.15, 0.1];
const GREEN: [f32; 3] = [0.15, 0.8, 0.2];
const BLUE: [f32; 3] = [0.2, 0.35, 0.95];
const YELLOW: [f32; 3] = [0.95, 0.85, 0.1];
const MAGENTA: [f32; 3] = [0.85, 0.2, 0.85];
const CYAN: [f32; 3] = [0.1, 0.85, 0.9];
const ORANGE: [f32; 3] = [1.0, 0.55, 0.05];

const CLASSES: [ClassDef; 10] = [
    ClassDef { name: "red disc", shape: Shape::Disc, colour: RED, texture: Texture::Solid },
    ClassDef { name: "green striped square", shape: Shape::Square, colour: GREEN, texture: Texture::Stripes },
    ClassDef { name: "blue checkered triangle", shape: Shape::Triangle, colour: BLUE, texture: Texture::Checker },
    ClassDef { name: "yellow cross", shape: Shape::Cross, colour: YELLOW, texture: Texture::Solid },
    ClassDef { name: "magenta dotted ring", shape: Shape::Ring, colour: MAGENTA, texture: Texture::Dots },
    // Tail classes: each differs from its head class in exactly one attribute.
    ClassDef { name: "red checkered disc", shape: Shape::Disc, colour: RED, texture: Texture::Checker },
    ClassDef { name: "cyan striped square", shape: Shape::Square, colour: CYAN, texture: Texture::Stripes },
    ClassDef { name: "blue checkered diamond", shape: Shape::Diamond, colour: BLUE, texture: Texture::Checker },
    ClassDef { name: "yellow striped cross", shape: Shape::Cross, colour: YELLOW, texture: Texture::Stripes },
    ClassDef { name: "orange dotted ring", shape: Shape::Ring, colour: ORANGE, texture: Texture::Dots },
];

pub const NUM_CLASSES: usize = CLASSES.len();

/// The head class each tail class resembles and the attributes they share.
pub fn ground_truth() -> Vec<Resemblance> {
    let mut out = Vec::new();
    for (c, def) in CLASSES.iter().enumerate().skip(5) {
        for (h, head) in CLASSES.iter().enumerate().take(5) {
            let mut shared = Vec::new();
            if def.shape == head.shape {
                shared.push("shape".to_string());
            }
            if def.colour == head.colour {
                shared.push("colour".to_string());
            }
            if def.texture == head.texture {
                shared.push("texture".to_string());
            }
            if shared.len() == 2 {
                out.push(Resemblance { class: c, head_class: h, shared });
            }
        }
    }
    out
}

/// Inside-test of a shape centred at the origin with radius 1, at (x, y).
fn inside(shape: Shape, x: f32, y: f32) -> bool {
    match shape {
        Shape::Disc => x * x + y * y <= 1.0,
        Shape::Square => x.abs() <= 0.8 && y.abs() <= 0.8,
        Shape::Triangle => y <= 0.8 && x.abs() <= (y + 1.0) * 0.5,
        Shape::Cross => (x.abs() <= 0.3 && y.abs() <= 1.0) || (y.abs() <= 0.3 && x.abs() <= 1.0),
        Shape::Ring => {
            let r2 = x * x + y * y;
            (0.4..=1.0).contains(&r2)
        }
        Shape::Diamond => x.abs() + y.abs() <= 1.0,
    }
}

/// Brightness factor of a texture at pixel (px, py); `period` in pixels, `phase` shifts it.
fn texture(t: Texture, px: f32, py: f32, period: f32, phase: f32) -> f32 {
    let u = (px + phase) / period;
    let v = (py + phase) / period;
    match t {
        Texture::Solid => 1.0,
        Texture::Stripes => {
            if (u + v).rem_euclid(1.0) < 0.5 {
                1.0
            } else {
                0.35
            }
        }
        Texture::Checker => {
            if (u.floor() + v.floor()) as i64 % 2 == 0 {
                1.0
            } else {
                0.3
            }
        }
        Texture::Dots => {
            let (du, dv) = (u.rem_euclid(1.0) - 0.5, v.rem_euclid(1.0) - 0.5);
            if du * du + dv * dv < 0.09 { 1.0 } else { 0.35 }
        }
    }
}

/// One image of class `c` as C×S×S bytes.
fn render(c: usize, size: usize, seed: u64, index: u64) -> Vec<u8> {
    let def = &CLASSES[c];
    let mut r = rng::rng(seed, Stream::Synthetic, ((c as u64) << 32) | index);
    let s = size as f32;
    let radius = s * r.random_range(0.28..0.38);
    let cx = s / 2.0 + r.random_range(-0.12..0.12) * s;
    let cy = s / 2.0 + r.random_range(-0.12..0.12) * s;
    let angle: f32 = r.random_range(-0.25..0.25);
    let (sin, cos) = angle.sin_cos();
    let bg: f32 = r.random_range(0.05..0.25);
    let gain: f32 = r.random_range(0.8..1.1);
    let period = (s / 32.0 * 6.0).max(3.0);
    let phase: f32 = r.random_range(0.0..period);
    let mut out = vec![0u8; 3 * size * size];
    for py in 0..size {
        for px in 0..size {
            let (dx, dy) = ((px as f32 + 0.5 - cx) / radius, (py as f32 + 0.5 - cy) / radius);
            let (x, y) = (cos * dx - sin * dy, sin * dx + cos * dy);
            let noise: f32 = r.random_range(-0.04..0.04);
            let rgb = if inside(def.shape, x, y) {
                let t = texture(def.texture, px as f32, py as f32, period, phase);
                def.colour.map(|k| k * gain * t + noise)
            } else {
                [bg + noise; 3]
            };
            for ch in 0..3 {
                out[ch * size * size + py * size + px] = (rgb[ch].clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
    out
}

/// The balanced synthetic set: `per_class` images of each class at `size`×`size`.
pub fn generate(size: usize, per_class: usize, seed: u64) -> Result<Dataset> {
    if size < 8 {
        return Err(Error::option("image-size", format!("{size}: the synthetic set needs at least 8×8")));
    }
    if per_class == 0 {
        return Err(Error::option("synthetic-per-class", "must be at least 1"));
    }
    let mut pixels = Vec::with_capacity(NUM_CLASSES * per_class * 3 * size * size);
    let mut labels = Vec::with_capacity(NUM_CLASSES * per_class);
    for c in 0..NUM_CLASSES {
        for i in 0..per_class {
            pixels.extend(render(c, size, seed, i as u64));
            labels.push(c);
        }
    }
    Ok(Dataset {
        name: "synthetic".into(),
        class_names: CLASSES.iter().map(|d| d.name.to_string()).collect(),
        channels: 3,
        size,
        pixels,
        labels,
        resembles: ground_truth(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tail_class_resembles_exactly_one_head() {
        let gt = ground_truth();
        assert_eq!(gt.len(), 5);
        for (k, r) in gt.iter().enumerate() {
            assert_eq!(r.class, 5 + k);
            assert_eq!(r.head_class, k);
        }
        // No two classes are identical.
        for (a, x) in CLASSES.iter().enumerate() {
            for y in &CLASSES[a + 1..] {
                assert!(x.shape != y.shape || x.colour != y.colour || x.texture != y.texture);
            }
        }
    }

    #[test]
    fn deterministic_from_seed() {
        let a = generate(16, 3, 5).unwrap();
        let b = generate(16, 3, 5).unwrap();
        let c = generate(16, 3, 6).unwrap();
        assert_eq!(a.pixels, b.pixels);
        assert_ne!(a.pixels, c.pixels);
        assert_eq!(a.len(), 30);
    }
}

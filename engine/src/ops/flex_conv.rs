//! Convolution forward and its input, weight and bias gradients on flex, as im2col / col2im +
//! one GEMM per block of images over contiguous NCHW f32 data (the `gemm` crate, which flex
//! itself links). Blocks run in parallel on rayon's threads, each GEMM on one thread; with fewer
//! blocks than threads the GEMM is the parallel part instead. Grouped, dilated and non-f32
//! convolutions go to flex's own ops.

use burn::backend::Flex;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{DType, TensorData};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// The shapes of one convolution, from its input, weight and options.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    images: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad: [usize; 2],
    ho: usize,
    wo: usize,
}

impl Geometry {
    /// `None` where these kernels do not apply (the caller then uses flex's op).
    fn new(x: &FlexTensor, weight: &FlexTensor, o: &ConvOptions<2>) -> Option<Self> {
        if super::plain_ops() || x.dtype() != DType::F32 || weight.dtype() != DType::F32 || o.groups != 1 || o.dilation != [1, 1] {
            return None;
        }
        let (xs, ws) = (x.layout().shape(), weight.layout().shape());
        let [images, cin, h, w] = [xs[0], xs[1], xs[2], xs[3]];
        let [cout, wcin, kh, kw] = [ws[0], ws[1], ws[2], ws[3]];
        if wcin != cin || h + 2 * o.padding[0] < kh || w + 2 * o.padding[1] < kw {
            return None;
        }
        let ho = (h + 2 * o.padding[0] - kh) / o.stride[0] + 1;
        let wo = (w + 2 * o.padding[1] - kw) / o.stride[1] + 1;
        Some(Self { images, cin, h, w, cout, kh, kw, stride: o.stride, pad: o.padding, ho, wo })
    }

    /// Rows of the column matrix: one per (input channel, kernel row, kernel column).
    fn k(&self) -> usize {
        self.cin * self.kh * self.kw
    }

    /// Output pixels per image.
    fn p(&self) -> usize {
        self.ho * self.wo
    }

    fn image_len(&self) -> usize {
        self.cin * self.h * self.w
    }

    /// For kernel offset `kx` along a row: the output columns `lo..hi` whose input column lies
    /// inside the image (stride 1 only).
    fn valid_columns(&self, kx: usize) -> (usize, usize) {
        let lo = self.pad[1].saturating_sub(kx).min(self.wo);
        let hi = (self.w + self.pad[1]).saturating_sub(kx).min(self.wo).max(lo);
        (lo, hi)
    }

    /// Calls `f(row, oy, Some((ci, iy, kx)))` for each column-matrix row and output row whose
    /// input row `iy` (of channel `ci`, at kernel column `kx`) is inside the image, and
    /// `f(row, oy, None)` for those whose input row is padding.
    fn for_each_row(&self, mut f: impl FnMut(usize, usize, Option<(usize, usize, usize)>)) {
        for ci in 0..self.cin {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = (ci * self.kh + ky) * self.kw + kx;
                    for oy in 0..self.ho {
                        let iy = (oy * self.stride[0] + ky) as isize - self.pad[0] as isize;
                        let inside = iy >= 0 && iy < self.h as isize;
                        f(row, oy, inside.then_some((ci, iy as usize, kx)));
                    }
                }
            }
        }
    }

    /// A stride-1 conv whose output is the input's size: each column-matrix row is the input
    /// plane shifted by a constant offset, copied in one piece (then its wrapped-around border
    /// zeroed) instead of row by row — most of the U-Net's convolutions, on small maps.
    fn same_size(&self) -> bool {
        self.stride == [1, 1] && self.ho == self.h && self.wo == self.w
    }

    /// For each column-matrix row of a [`same_size`](Self::same_size) conv: `f(row, channel,
    /// dy, dx)`, the kernel offset from the output pixel to its input pixel.
    fn for_each_shift(&self, mut f: impl FnMut(usize, usize, isize, isize)) {
        for ci in 0..self.cin {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    f((ci * self.kh + ky) * self.kw + kx, ci, ky as isize - self.pad[0] as isize, kx as isize - self.pad[1] as isize);
                }
            }
        }
    }

    /// Zeroes the entries of a shifted plane (`h × w`, shift `dy`, `dx`) whose input pixel lies
    /// outside the image.
    fn zero_outside(&self, row: &mut [f32], dy: isize, dx: isize) {
        let (h, w) = (self.h as isize, self.w as isize);
        // Output rows oy with oy + dy outside 0..h: the first −dy or the last dy of them.
        let (top, bottom) = ((-dy).clamp(0, h) as usize, (h - dy).clamp(0, h) as usize);
        let w = w as usize;
        row[..top * w].fill(0.0);
        row[bottom.max(top) * w..self.h * w].fill(0.0);
        if dx != 0 {
            let cols = if dx < 0 { 0..(dx.unsigned_abs()).min(w) } else { w.saturating_sub(dx as usize)..w };
            for line in row[top * w..bottom.max(top) * w].chunks_mut(w) {
                line[cols.clone()].fill(0.0);
            }
        }
    }

    /// The linear range of output pixels `p` whose `p + shift` lies in the plane.
    fn shifted_range(&self, shift: isize) -> std::ops::Range<usize> {
        let n = (self.h * self.w) as isize;
        (shift.min(0).unsigned_abs()).min(n as usize)..(n - shift.max(0)).max(0) as usize
    }

    /// Unfolds one image (`cin·h·w`) into its column matrix (`k × p`), row `r` at `col[r·ld..]`.
    fn im2col(&self, image: &[f32], col: &mut [f32], ld: usize) {
        if self.same_size() {
            let plane = self.h * self.w;
            self.for_each_shift(|row, ci, dy, dx| {
                let out = &mut col[row * ld..][..plane];
                let src = &image[ci * plane..][..plane];
                let shift = dy * self.w as isize + dx;
                let range = self.shifted_range(shift);
                out[..range.start].fill(0.0);
                out[range.end..].fill(0.0);
                let from = (range.start as isize + shift) as usize;
                out[range.clone()].copy_from_slice(&src[from..from + range.len()]);
                self.zero_outside(out, dy, dx);
            });
            return;
        }
        let (p, wo, w) = (ld, self.wo, self.w);
        let g = *self;
        self.for_each_row(|row, oy, inside| {
            let out = &mut col[row * p + oy * wo..][..wo];
            let Some((ci, iy, kx)) = inside else {
                out.fill(0.0);
                return;
            };
            {
                let src = &image[(ci * g.h + iy) * w..][..w];
                if g.stride[1] == 1 {
                    let (lo, hi) = g.valid_columns(kx);
                    out[..lo].fill(0.0);
                    out[hi..].fill(0.0);
                    if hi > lo {
                        let first = lo + kx - g.pad[1];
                        out[lo..hi].copy_from_slice(&src[first..first + (hi - lo)]);
                    }
                } else {
                    for (ox, o) in out.iter_mut().enumerate() {
                        let ix = (ox * g.stride[1] + kx) as isize - g.pad[1] as isize;
                        *o = if ix >= 0 && (ix as usize) < w { src[ix as usize] } else { 0.0 };
                    }
                }
            }
        });
    }

    /// Folds a column matrix (row `r` at `col[r·ld..]`) back onto one image, adding up where
    /// windows overlap. The column matrix is scratch: entries that fall outside are zeroed in it.
    fn col2im(&self, col: &mut [f32], image: &mut [f32], ld: usize) {
        if self.same_size() {
            let plane = self.h * self.w;
            self.for_each_shift(|row, ci, dy, dx| {
                let src = &mut col[row * ld..][..plane];
                self.zero_outside(src, dy, dx);
                let shift = dy * self.w as isize + dx;
                let range = self.shifted_range(shift);
                let from = (range.start as isize + shift) as usize;
                let dst = &mut image[ci * plane + from..][..range.len()];
                dst.iter_mut().zip(&src[range]).for_each(|(d, s)| *d += s);
            });
            return;
        }
        let (p, wo, w) = (ld, self.wo, self.w);
        let g = *self;
        self.for_each_row(|row, oy, inside| {
            let Some((ci, iy, kx)) = inside else { return };
            {
                let src = &col[row * p + oy * wo..][..wo];
                let dst = &mut image[(ci * g.h + iy) * w..][..w];
                if g.stride[1] == 1 {
                    let (lo, hi) = g.valid_columns(kx);
                    if hi > lo {
                        let first = lo + kx - g.pad[1];
                        for (d, s) in dst[first..first + (hi - lo)].iter_mut().zip(&src[lo..hi]) {
                            *d += s;
                        }
                    }
                } else {
                    for (ox, s) in src.iter().enumerate() {
                        let ix = (ox * g.stride[1] + kx) as isize - g.pad[1] as isize;
                        if ix >= 0 && (ix as usize) < w {
                            dst[ix as usize] += s;
                        }
                    }
                }
            }
        });
    }
}

/// A read-only row-major (or transposed, through its strides) matrix operand.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self { data, row_stride: cols, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self { data, row_stride: 1, col_stride: cols }
    }

    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `dst (m × n, row-major) = [dst +] lhs (m × k) · rhs (k × n)` for `[m, n, k]`.
fn gemm([m, n, k]: [usize; 3], dst: &mut [f32], accumulate: bool, lhs: Operand, rhs: Operand, parallel: bool) {
    assert!(dst.len() >= m * n && lhs.covers(m, k) && rhs.covers(k, n), "gemm operands too short");
    let parallelism = if parallel { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    // SAFETY: the assert above keeps every index the strides reach inside the slices, and `dst`
    // is borrowed mutably, so it aliases neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

fn floats(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor")
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

impl Geometry {
    /// Images per GEMM: enough output columns (`images · p`, 512) that the GEMM is not all
    /// set-up on small maps, every thread a block, and the block's column matrix within 16 MB.
    fn block(&self) -> usize {
        let wanted = 512usize.div_ceil(self.p());
        let affordable = (4 << 20) / (self.k() * self.p()).max(1);
        // Every thread gets a block.
        let shared = self.images.div_ceil(rayon::current_num_threads());
        wanted.min(affordable).min(shared).max(1)
    }

    /// A 1×1, stride-1, unpadded conv: an image is its own column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// The column matrices of images `first..first + n` side by side (`k × n·p`): the image
    /// itself for one image of a pointwise conv, else unfolded into `col`.
    fn block_columns<'a>(&self, xs: &'a [f32], first: usize, n: usize, col: &'a mut Vec<f32>) -> &'a [f32] {
        if n == 1 && self.pointwise() {
            return &xs[first * self.image_len()..][..self.image_len()];
        }
        let ld = n * self.p();
        col.resize(self.k() * ld, 0.0);
        for b in 0..n {
            let image = &xs[(first + b) * self.image_len()..][..self.image_len()];
            self.im2col(image, &mut col[b * self.p()..], ld);
        }
        col
    }

    /// `gy` of images `first..first + n` as one `cout × n·p` matrix (one image already is).
    fn block_rows<'a>(&self, gys: &'a [f32], first: usize, n: usize, rows: &'a mut Vec<f32>) -> &'a [f32] {
        let (p, ld) = (self.p(), n * self.p());
        if n == 1 {
            return &gys[first * self.cout * p..][..self.cout * p];
        }
        rows.resize(self.cout * ld, 0.0);
        for b in 0..n {
            let image = &gys[(first + b) * self.cout * p..][..self.cout * p];
            for (co, src) in image.chunks(p).enumerate() {
                rows[co * ld + b * p..][..p].copy_from_slice(src);
            }
        }
        rows
    }
}

/// Scratch matrices one thread reuses from block to block.
#[derive(Default)]
struct Scratch {
    col: Vec<f32>,
    rows: Vec<f32>,
}

/// Runs `f(first image, images, their output, scratch, parallel gemm?)` over blocks of
/// `g.block()` images, whose outputs are consecutive `per_image`-long pieces of `out`: blocks
/// in parallel when there are enough of them, else one after another with parallel GEMMs.
fn per_block(g: &Geometry, out: &mut [f32], per_image: usize, f: impl Fn(usize, usize, &mut [f32], &mut Scratch, bool) + Sync) {
    let block = g.block();
    let chunk = block * per_image;
    if g.images.div_ceil(block) >= rayon::current_num_threads() && g.images > block {
        out.par_chunks_mut(chunk).enumerate().for_each_init(Scratch::default, |scratch, (i, o)| f(i * block, o.len() / per_image, o, scratch, false));
    } else {
        let mut scratch = Scratch::default();
        for (i, o) in out.chunks_mut(chunk).enumerate() {
            f(i * block, o.len() / per_image, o, &mut scratch, true);
        }
    }
}

pub fn conv2d(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>, options: ConvOptions<2>) -> FlexTensor {
    let Some(g) = Geometry::new(&x, &weight, &options) else {
        return <Flex as ModuleOps<Flex>>::conv2d(x, weight, bias, options);
    };
    let (x, weight, bias) = (floats(&x), floats(&weight), bias.map(|b| floats(&b)));
    let (xs, ws, bs) = (slice(&x), slice(&weight), bias.as_ref().map(slice));
    let (k, p) = (g.k(), g.p());
    let mut out = vec![0f32; g.images * g.cout * p];
    per_block(&g, &mut out, g.cout * p, |first, n, y, scratch, parallel| {
        // y_block (cout × n·p) = W (cout × k) · columns (k × n·p), then laid out per image.
        let ld = n * p;
        let col = g.block_columns(xs, first, n, &mut scratch.col);
        if n == 1 {
            if let Some(bs) = bs {
                y.chunks_mut(p).zip(bs).for_each(|(row, b)| row.fill(*b));
            }
            gemm([g.cout, p, k], y, bs.is_some(), Operand::rows(ws, k), Operand::rows(col, p), parallel);
            return;
        }
        scratch.rows.resize(g.cout * ld, 0.0);
        gemm([g.cout, ld, k], &mut scratch.rows, false, Operand::rows(ws, k), Operand::rows(col, ld), parallel);
        for (b, image) in y.chunks_mut(g.cout * p).enumerate() {
            for (co, dst) in image.chunks_mut(p).enumerate() {
                let src = &scratch.rows[co * ld + b * p..][..p];
                let shift = bs.map_or(0.0, |bs| bs[co]);
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = s + shift);
            }
        }
    });
    tensor(out, [g.images, g.cout, g.ho, g.wo])
}

pub fn conv2d_x_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
    let Some(g) = Geometry::new(&x, &weight, &options) else {
        return <Flex as ModuleOps<Flex>>::conv2d_x_backward(x, weight, output_grad, options);
    };
    let (weight, gy) = (floats(&weight), floats(&output_grad));
    let (ws, gys) = (slice(&weight), slice(&gy));
    let (k, p) = (g.k(), g.p());
    let mut dx = vec![0f32; g.images * g.image_len()];
    per_block(&g, &mut dx, g.image_len(), |first, n, dx, scratch, parallel| {
        // dcol (k × n·p) = Wᵀ (k × cout) · gy_block (cout × n·p), folded back onto each image.
        let ld = n * p;
        let rows = g.block_rows(gys, first, n, &mut scratch.rows);
        if n == 1 && g.pointwise() {
            gemm([k, p, g.cout], dx, false, Operand::transposed(ws, k), Operand::rows(rows, p), parallel);
            return;
        }
        scratch.col.resize(k * ld, 0.0);
        gemm([k, ld, g.cout], &mut scratch.col, false, Operand::transposed(ws, k), Operand::rows(rows, ld), parallel);
        for (b, image) in dx.chunks_mut(g.image_len()).enumerate() {
            g.col2im(&mut scratch.col[b * p..], image, ld);
        }
    });
    tensor(dx, [g.images, g.cin, g.h, g.w])
}

pub fn conv2d_weight_backward(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
    let Some(g) = Geometry::new(&x, &weight, &options) else {
        return <Flex as ModuleOps<Flex>>::conv2d_weight_backward(x, weight, output_grad, options);
    };
    let (x, gy) = (floats(&x), floats(&output_grad));
    let (xs, gys) = (slice(&x), slice(&gy));
    let (k, p) = (g.k(), g.p());
    // dW (cout × k) = Σ_blocks gy_block (cout × n·p) · columnsᵀ (n·p × k): each thread sums its
    // share of the blocks, then the shares are added.
    let block = g.block();
    let blocks = g.images.div_ceil(block);
    let partial = |range: std::ops::Range<usize>, parallel: bool| {
        let (mut dw, mut scratch) = (vec![0f32; g.cout * k], Scratch::default());
        for (j, blk) in range.enumerate() {
            let (first, n) = (blk * block, block.min(g.images - blk * block));
            let ld = n * p;
            let col = g.block_columns(xs, first, n, &mut scratch.col);
            let rows = g.block_rows(gys, first, n, &mut scratch.rows);
            gemm([g.cout, k, ld], &mut dw, j > 0, Operand::rows(rows, ld), Operand::transposed(col, ld), parallel);
        }
        dw
    };
    let threads = rayon::current_num_threads().min(blocks).max(1);
    let dw = if threads == 1 {
        partial(0..blocks, true)
    } else {
        let per = blocks.div_ceil(threads);
        let shares: Vec<Vec<f32>> = (0..threads).into_par_iter().map(|t| partial(t * per..((t + 1) * per).min(blocks), false)).collect();
        shares
            .into_iter()
            .reduce(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            })
            .expect("one share per thread")
    };
    tensor(dw, [g.cout, g.cin, g.kh, g.kw])
}

/// Σ of the output gradient over images and pixels, per output channel.
pub fn conv2d_bias_backward(x: FlexTensor, bias: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
    if super::plain_ops() || output_grad.dtype() != DType::F32 {
        return <Flex as ModuleOps<Flex>>::conv2d_bias_backward(x, bias, output_grad);
    }
    let gy = floats(&output_grad);
    let s = gy.layout().shape();
    let (cout, p) = (s[1], s[2] * s[3]);
    let mut sums = vec![0f64; cout];
    for image in slice(&gy).chunks(cout * p) {
        for (sum, row) in sums.iter_mut().zip(image.chunks(p)) {
            *sum += row.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    FlexTensor::from_data(TensorData::new(sums.into_iter().map(|v| v as f32).collect::<Vec<f32>>(), [cout]))
}

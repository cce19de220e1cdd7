"""The top-down orthographic raster of the traffic world, in numpy: flat ground quads and boxes seen from above.

Image model: each sample point shows the highest surface over it (the camera looks straight down, -z): ground
quads at z = layer * ``LAYER_HEIGHT`` (a higher layer over a lower one) and box tops at ``centre z + half z``.
Every pixel holds ``ss`` x ``ss`` samples (``ss`` odd). Colour is their mean (a box filter: anti-aliasing, so a
1.8 m wide car at 1.9 m per pixel still tints its pixel). Segmentation and depth are coverage-based, so that
whatever tints a pixel's colour can be found in them too:

1. a pixel's id is the one shown by the most of its samples (a tie: the higher surface's); its depth (m, from the
   camera plane, along -z) is that surface's, the highest of it within the pixel (0 where nothing is: background);
2. then every id shown by some sample of the image that rule 1 gave no pixel (a car or a person smaller than a
   pixel, or straddling four) takes the pixel where it shows in the most samples, among those whose id keeps another
   pixel and that no other such id took (two of them in one pixel: the one with more samples takes it, the other
   its next best pixel, if any).

So every object drawn in the RGB has at least one pixel of its id (with ``ss`` = 1 both rules are the pixel-centre
sample's surface). No lighting, shadows or weather: the top-down view is a map-like raster; fog, rain and daylight
act only on the dashcam's pixels (:mod:`._dashcam`).

Conventions (:mod:`crlgen.scenes.cameras`): pixel (u, v) = (column, row) with integer pixel centres; the
top-down camera's ``camera_to_world`` is :func:`crlgen.scenes.cameras.topdown_pose` (x right = world +x,
y down = world -y, looking along -z); ``K`` = ``orthographic_intrinsics`` (pixels per metre on the diagonal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Height (m) between ground layers (as the dashcam's ground).
LAYER_HEIGHT = 0.01


@dataclass(frozen=True)
class Grid:
    """World (x, y) of the sample points of a top-down camera: ``xs`` (W*ss,) and ``ys`` (H*ss,) m, the pixel
    centres' ``cx`` (W,) and ``cy`` (H,) m, the camera plane's height ``z0`` m and the supersampling ``ss``."""

    xs: np.ndarray
    ys: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    z0: float
    ss: int

    @classmethod
    def of(cls, K: np.ndarray, camera_to_world: np.ndarray, width: int, height: int, ss: int = 3) -> "Grid":
        """The grid of an orthographic top-down camera. Raises ValueError when the camera does not look straight
        down with image x along world +x (the only orientation ``topdown`` cameras have) or ``ss`` is even."""
        R = np.asarray(camera_to_world)[:3, :3]
        if not np.allclose(R, np.diag([1.0, -1.0, -1.0]), atol=1e-9):
            raise ValueError("the top-down raster needs a camera looking straight down with image x along world +x")
        if ss < 1 or ss % 2 == 0:
            raise ValueError(f"supersampling must be an odd number >= 1, got {ss}")
        t = np.asarray(camera_to_world)[:3, 3]
        s = float(K[0, 0])
        us = (np.arange(width * ss) + 0.5) / ss - 0.5
        vs = (np.arange(height * ss) + 0.5) / ss - 0.5
        xs = t[0] + (us - K[0, 2]) / s
        ys = t[1] - (vs - K[1, 2]) / float(K[1, 1])
        cx = t[0] + (np.arange(width) - K[0, 2]) / s
        cy = t[1] - (np.arange(height) - K[1, 2]) / float(K[1, 1])
        return cls(xs, ys, cx, cy, float(t[2]), ss)


@dataclass
class Canvas:
    """A raster being painted, per sample: ``rgb`` (H*ss, W*ss, 3) float32 sRGB in [0, 1], ``top`` (H*ss, W*ss)
    float32 the height (m) of what is drawn (-inf: nothing) and ``sid`` (H*ss, W*ss) uint8 its id. After
    :meth:`freeze` (a background painted once, copied per frame) a copy keeps the background's rule-1 pixels
    (``cache``) and recomputes only the pixels painted since (``dirty`` (H, W) bool)."""

    rgb: np.ndarray
    top: np.ndarray
    sid: np.ndarray
    dirty: np.ndarray | None = None
    cache: tuple[np.ndarray, np.ndarray] | None = None

    def copy(self) -> "Canvas":
        dirty = None if self.dirty is None else np.zeros_like(self.dirty)
        return Canvas(self.rgb.copy(), self.top.copy(), self.sid.copy(), dirty, self.cache)

    def freeze(self, grid: Grid) -> "Canvas":
        """Remember every pixel's rule-1 id and height, so that copies only redo the pixels painted on them."""
        self.cache = _majority(*self._per_pixel(grid))
        self.dirty = np.zeros((len(grid.cy), len(grid.cx)), bool)
        return self

    def _per_pixel(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Ids and heights (H, W, ss * ss) of each pixel's samples."""
        ss, H, W = grid.ss, len(grid.cy), len(grid.cx)
        return (self.sid.reshape(H, ss, W, ss).transpose(0, 2, 1, 3).reshape(H, W, ss * ss),
                self.top.reshape(H, ss, W, ss).transpose(0, 2, 1, 3).reshape(H, W, ss * ss))

    def finish(self, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, depth (H, W) float32 m, seg (H, W) uint8): colour averaged over each pixel's samples,
        segmentation and depth by coverage (the module docstring's rules 1 and 2)."""
        ss = grid.ss
        H, W = len(grid.cy), len(grid.cx)
        mean = self.rgb.reshape(H, ss, W, ss, 3).mean(axis=(1, 3))
        rgb = np.clip(np.rint(mean * 255.0), 0, 255).astype(np.uint8)
        ids, tops = self._per_pixel(grid)
        if self.cache is None:
            seg, best_h = _majority(ids, tops)
        else:
            seg, best_h = self.cache[0].copy(), self.cache[1].copy()
            seg[self.dirty], best_h[self.dirty] = _majority(ids[self.dirty], tops[self.dirty])
        shown = np.bincount(self.sid.ravel(), minlength=256)  # samples per id
        pixels = np.bincount(seg.ravel(), minlength=256)  # pixels per id
        missing = np.flatnonzero((shown > 0) & (pixels == 0))
        counts = {int(u): (ids == u).sum(axis=-1).ravel() for u in missing}
        claimed = np.zeros(H * W, bool)
        for u in sorted(counts, key=lambda u: -int(counts[u].max())):
            # rule 2: every id shown somewhere keeps a pixel, taken from an id that has more than one
            n = np.where(~claimed & (pixels[seg.ravel()] > 1), counts[u], 0)
            k = int(np.argmax(n))
            if n[k] > 0:
                pixels[seg.flat[k]] -= 1
                pixels[u] += 1
                seg.flat[k], claimed[k] = u, True
                best_h.flat[k] = np.where(ids.reshape(H * W, -1)[k] == u, tops.reshape(H * W, -1)[k], -np.inf).max()
        depth = np.where(np.isfinite(best_h), grid.z0 - best_h, 0.0).astype(np.float32)
        return rgb, depth, seg


def _majority(ids: np.ndarray, tops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rule 1 for pixels (..., n) of sample ids and heights: the id of the most samples (a tie: the higher surface)
    and the highest of it within the pixel (-inf: nothing drawn)."""
    seg, best_h = ids.min(axis=-1), tops.max(axis=-1)  # right where a pixel shows one id: most pixels
    mixed = seg != ids.max(axis=-1)
    m_ids, m_tops = ids[mixed], tops[mixed]  # (M, n): pixels showing several ids
    m_seg = np.zeros(len(m_ids), np.uint8)
    m_n = np.zeros(len(m_ids), np.int64)
    m_h = np.full(len(m_ids), -np.inf, np.float32)
    for u in np.unique(m_ids):
        on = m_ids == u
        n = on.sum(axis=-1)
        h = np.where(on, m_tops, -np.inf).max(axis=-1)
        wins = (n > m_n) | ((n == m_n) & (n > 0) & (h > m_h))
        m_seg[wins], m_n[wins], m_h[wins] = u, n[wins], h[wins]
    seg[mixed], best_h[mixed] = m_seg, m_h
    return seg, best_h


def blank(grid: Grid, rgb=(0.0, 0.0, 0.0)) -> Canvas:
    """An empty canvas (background id 0, depth 0 = no surface)."""
    Hs, Ws = len(grid.ys), len(grid.xs)
    return Canvas(np.broadcast_to(np.asarray(rgb, np.float32), (Hs, Ws, 3)).copy(),
                  np.full((Hs, Ws), -np.inf, np.float32), np.zeros((Hs, Ws), np.uint8))


def _window(axis: np.ndarray, lo: float, hi: float) -> slice:
    """Indices of ``axis`` (monotonic) with values in [lo, hi], as a slice."""
    if axis[-1] >= axis[0]:
        a, b = np.searchsorted(axis, lo, "left"), np.searchsorted(axis, hi, "right")
    else:
        r = axis[::-1]
        n = len(axis)
        a, b = n - np.searchsorted(r, hi, "right"), n - np.searchsorted(r, lo, "left")
    return slice(int(a), int(b))


def _paint(canvas: Canvas, grid: Grid, inside_fn, bounds, z: float, rgb, sid: int) -> None:
    """Paint the region ``inside_fn(x, y) -> bool`` (within ``bounds`` = (xmin, xmax, ymin, ymax) m) at height z."""
    x0, x1, y0, y1 = bounds
    cs, rs = _window(grid.xs, x0, x1), _window(grid.ys, y0, y1)
    if cs.stop > cs.start and rs.stop > rs.start:
        X, Y = np.meshgrid(grid.xs[cs], grid.ys[rs])
        m = inside_fn(X, Y) & (canvas.top[rs, cs] <= z)
        canvas.rgb[rs, cs][m] = rgb
        canvas.top[rs, cs][m] = z
        canvas.sid[rs, cs][m] = sid
        if canvas.dirty is not None and m.any():  # the pixels holding the painted samples
            r, c = np.nonzero(m)
            canvas.dirty[(rs.start + r) // grid.ss, (cs.start + c) // grid.ss] = True


def paint_quads(canvas: Canvas, grid: Grid, corners: np.ndarray, rgb: np.ndarray, ids: np.ndarray, layer: np.ndarray) -> None:
    """Ground quads (n, 4, 2) m (convex, either winding) with sRGB ``rgb`` (n, 3), ids (n,), ``layer`` (n,), in layer order."""
    for k in np.argsort(layer, kind="stable"):
        c = np.asarray(corners[k], np.float64)
        e = np.roll(c, -1, axis=0) - c

        def inside(X, Y, c=c, e=e):
            s = [e[j, 0] * (Y - c[j, 1]) - e[j, 1] * (X - c[j, 0]) for j in range(4)]
            return (np.minimum.reduce(s) >= 0) | (np.maximum.reduce(s) <= 0)

        _paint(canvas, grid, inside, (c[:, 0].min(), c[:, 0].max(), c[:, 1].min(), c[:, 1].max()),
               float(layer[k]) * LAYER_HEIGHT, rgb[k], int(ids[k]))


def paint_boxes(canvas: Canvas, grid: Grid, centre: np.ndarray, yaw: np.ndarray, half: np.ndarray, rgb: np.ndarray,
                ids: np.ndarray) -> None:
    """Boxes seen from above: centre (n, 3) m, yaw (n,) rad about +z, half extents (n, 3) m, sRGB (n, 3), ids (n,).
    Lower tops first, so a higher box covers a lower one where they overlap."""
    tops = centre[:, 2] + half[:, 2]
    for k in np.argsort(tops, kind="stable"):
        cx, cy = float(centre[k, 0]), float(centre[k, 1])
        c, s = np.cos(yaw[k]), np.sin(yaw[k])
        hx, hy = float(half[k, 0]), float(half[k, 1])

        def inside(X, Y, cx=cx, cy=cy, c=c, s=s, hx=hx, hy=hy):
            dx, dy = X - cx, Y - cy
            return (np.abs(c * dx + s * dy) <= hx) & (np.abs(-s * dx + c * dy) <= hy)

        r = float(np.hypot(hx, hy))
        _paint(canvas, grid, inside, (cx - r, cx + r, cy - r, cy + r), float(tops[k]), rgb[k], int(ids[k]))


def paint_discs(canvas: Canvas, grid: Grid, centre: np.ndarray, radius: np.ndarray, top: np.ndarray, rgb: np.ndarray,
                ids: np.ndarray) -> None:
    """Discs (people from above): centre (n, 2) m, radius (n,) m, top height (n,) m, sRGB (n, 3), ids (n,)."""
    for k in np.argsort(top, kind="stable"):
        cx, cy, r = float(centre[k, 0]), float(centre[k, 1]), float(radius[k])
        _paint(canvas, grid, lambda X, Y, cx=cx, cy=cy, r=r: (X - cx) ** 2 + (Y - cy) ** 2 <= r * r,
               (cx - r, cx + r, cy - r, cy + r), float(top[k]), rgb[k], int(ids[k]))

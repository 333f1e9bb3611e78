"""The tile grid: a ZEA projection holding every pawprint, rotated to the smallest area.

A VIRCAM tile is six pawprints offset to fill the detector gaps; its co-add lives on one
zenithal equal-area (ZEA) grid, the projection VISIONS and CASU use for tiles. The grid's
reference point is the centre of the footprint and its orientation is the one whose bounding
rectangle of the footprint, in the projection plane, has the smallest area (rotating calipers
on the convex hull), turned by at most 45 degrees from north up. Equal area keeps pixel
areas, and so fluxes and exposure maps, the same over the whole tile.

Everything here is pure: sky positions in, a header dictionary out.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import ConvexHull

__all__ = ["TileGrid", "minimum_area_rotation", "tile_grid", "zea_offsets"]

# VISIONS/CASU tile pixel: 1/3 arcsec for the 0.339-arcsec native VIRCAM pixel.
TILE_PIXEL_ARCSEC = 1.0 / 3.0
NATIVE_PIXEL_ARCSEC = 0.339


class TileGrid(dict):
    """The WCS cards of a tile grid (``{keyword: value}``), with its size as attributes."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the tile image."""
        return int(self["NAXIS2"]), int(self["NAXIS1"])

    @property
    def pixel_scale(self) -> float:
        """Pixel size [arcsec]."""
        return math.sqrt(abs(self["CD1_1"] * self["CD2_2"] - self["CD1_2"] * self["CD2_1"])) * 3600.0


def zea_offsets(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """ZEA intermediate coordinates about ``(ra0, dec0)`` [deg], x to the east, y to the north.

    The FITS ZEA projection (Calabretta & Greisen 2002, native pole at the reference point,
    LONPOLE 180): ``R = (360/pi) sin((90 - theta)/2)``, ``x = R sin(phi)``, ``y = -R cos(phi)``.
    """
    a, d = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = math.radians(ra0), math.radians(dec0)
    # native coordinates of a zenithal projection with the reference point at the pole
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    east = np.cos(d) * np.sin(a - a0)
    north = np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)
    # distance from the reference point on the sphere, and the ZEA radius for it
    c = np.arccos(np.clip(cos_c, -1.0, 1.0))
    radius = np.degrees(2.0 * np.sin(c / 2.0))
    norm = np.hypot(east, north)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(norm > 0, radius / norm, 0.0)
    return east * scale, north * scale


def minimum_area_rotation(x: np.ndarray, y: np.ndarray) -> float:
    """The angle [deg] by which to turn axes so the bounding box of (x, y) has the least area.

    Returned in (-45, 45]: a rectangle turned by 90 degrees is the same rectangle, and the
    tile stays as close to north up as its smallest box allows.
    """
    points = np.column_stack([x, y])
    if len(points) < 3:
        return 0.0
    try:
        hull = points[ConvexHull(points).vertices]
    except Exception:  # collinear or degenerate points: no area to minimise
        return 0.0
    edges = np.diff(np.vstack([hull, hull[:1]]), axis=0)
    angles = np.unique(np.round(np.degrees(np.arctan2(edges[:, 1], edges[:, 0])) % 90.0, 9))
    best, best_area = 0.0, math.inf
    for angle in np.append(angles, 0.0):  # north up competes on equal terms
        u, v = _rotate(hull[:, 0], hull[:, 1], angle)
        area = np.ptp(u) * np.ptp(v)
        if area < best_area * (1 - 1e-9):
            best, best_area = float(angle), area
    return best - 90.0 if best > 45.0 else best


def _rotate(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of (x, y) on axes turned by ``angle`` degrees counter-clockwise."""
    t = math.radians(angle)
    return x * math.cos(t) + y * math.sin(t), -x * math.sin(t) + y * math.cos(t)


def tile_grid(
    ra: np.ndarray,
    dec: np.ndarray,
    pixel_scale: float,
    margin: float = 10.0,
    rotate: bool = True,
    centre: tuple[float, float] | None = None,
) -> TileGrid:
    """The ZEA grid that holds the sky positions ``ra``, ``dec`` (the pawprint corners).

    Parameters
    ----------
    ra, dec : array
        Sky positions the grid must hold [deg]: the edges of every detector of every pawprint.
    pixel_scale : float
        Pixel size [arcsec].
    margin : float
        Extra border around the footprint [arcsec].
    rotate : bool
        Turn the grid to the smallest bounding rectangle; otherwise north up, east left.
    centre : (float, float), optional
        Reference point (RA, Dec) [deg]; default the centre of the positions on the sphere.

    Returns
    -------
    TileGrid
        ``NAXIS1/2``, ``CTYPE``, ``CUNIT``, ``CRVAL``, ``CRPIX``, ``CD``, ``RADESYS``, ``EQUINOX``.
    """
    ra, dec = np.asarray(ra, float).ravel(), np.asarray(dec, float).ravel()
    if ra.size == 0:
        raise ValueError("tile_grid needs at least one sky position")
    if not pixel_scale > 0:
        raise ValueError(f"pixel scale must be positive, not {pixel_scale}")
    if centre is None:
        centre = _mean_direction(ra, dec)
    x, y = zea_offsets(ra, dec, *centre)
    angle = minimum_area_rotation(x, y) if rotate else 0.0
    u, v = _rotate(x, y, angle)
    step = pixel_scale / 3600.0
    # pixel axes: i grows to the west (-u), j to the north (+v), as for an image with east left
    i, j = -u / step, v / step
    pad = margin / pixel_scale
    i_lo, j_lo = math.floor(i.min() - pad), math.floor(j.min() - pad)
    nx = math.ceil(i.max() + pad) - i_lo + 1
    ny = math.ceil(j.max() + pad) - j_lo + 1
    t = math.radians(angle)
    # world (x east, y north) = R(angle) (u, v) and (u, v) = step (-i, j): CD = step R diag(-1, 1)
    cd = step * np.array([[-math.cos(t), -math.sin(t)], [-math.sin(t), math.cos(t)]])
    return TileGrid(
        NAXIS1=nx,
        NAXIS2=ny,
        CTYPE1="RA---ZEA",
        CTYPE2="DEC--ZEA",
        CUNIT1="deg",
        CUNIT2="deg",
        CRVAL1=float(centre[0]),
        CRVAL2=float(centre[1]),
        CRPIX1=float(1 - i_lo),
        CRPIX2=float(1 - j_lo),
        CD1_1=float(cd[0, 0]),
        CD1_2=float(cd[0, 1]),
        CD2_1=float(cd[1, 0]),
        CD2_2=float(cd[1, 1]),
        RADESYS="ICRS",
        EQUINOX=2000.0,
    )


def _mean_direction(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    """The normalised mean unit vector of the positions, as (RA, Dec) [deg]."""
    a, d = np.radians(ra), np.radians(dec)
    v = np.array([np.mean(np.cos(d) * np.cos(a)), np.mean(np.cos(d) * np.sin(a)), np.mean(np.sin(d))])
    v /= np.linalg.norm(v)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(v[2])))

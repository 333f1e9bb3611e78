"""Source masking by thresholding above a smooth background."""

from __future__ import annotations

import numpy as np

__all__ = ["threshold_mask"]


def threshold_mask(
    image: np.ndarray,
    variance: np.ndarray | None = None,
    *,
    threshold: float = 3.0,
    min_area: int = 5,
    dilate: int = 3,
    mesh_size: int = 64,
    structure: str = "disk",
    smooth_fwhm: float = 2.0,
) -> np.ndarray:
    """Flag sources: pixels ``threshold`` sigma above a mesh background, grown by ``dilate``.

    Detection runs on the background-subtracted image convolved with a Gaussian of
    ``smooth_fwhm`` pixels (a matched filter for stars of about that size, as SExtractor's
    default 3 x 3 kernel), thresholded in units of the *smoothed* noise: the faint wings and
    faint stars a per-pixel cut misses stand out, while single noisy pixels do not.

    Parameters
    ----------
    image : ndarray
        One detector, background dominated (ADU); NaN for missing pixels.
    variance : ndarray, optional
        Per-pixel variance (ADU²); the background RMS map is used where not given.
    threshold : float
        Detection threshold in units of the noise.
    min_area : int
        Connected groups smaller than this many pixels are not sources (noise, hot pixels).
    dilate : int
        Radius in pixels by which each source region is grown (source wings).
    mesh_size : int
        Background mesh size in pixels (clipped to the image size).
    structure : {"disk", "box"}
        Shape of the dilation element.
    smooth_fwhm : float
        FWHM in pixels of the detection filter; 0 thresholds the pixels themselves.

    Returns
    -------
    ndarray of bool
        ``True`` on sources.
    """
    import sep  # imported here: registering the plugin must not cost every recipe the import
    from scipy import ndimage

    data = np.ascontiguousarray(image, dtype=np.float32)
    missing = ~np.isfinite(data)
    if missing.all():
        return np.zeros(data.shape, dtype=bool)
    mesh = int(max(8, min(mesh_size, min(data.shape) // 2)))
    background = sep.Background(data, mask=missing, bw=mesh, bh=mesh, fw=3, fh=3)
    residual = np.where(missing, 0.0, data - background.back()).astype(np.float32)
    noise = np.sqrt(variance) if variance is not None else background.rms()
    if smooth_fwhm > 0:
        sigma = smooth_fwhm / 2.3548
        # missing pixels count as background (0): next to one the filter reads a little low,
        # which only makes detection there slightly conservative
        residual = ndimage.gaussian_filter(residual, sigma)
        # a unit-sum Gaussian of width sigma scales white noise by 1 / (2 sqrt(pi) sigma)
        noise = noise * np.float32(min(1.0, 1.0 / (2.0 * np.sqrt(np.pi) * sigma)))
    above = (residual > threshold * noise) & ~missing
    labels, count = ndimage.label(above)
    if count:
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep = sizes >= min_area
        keep[0] = False
        above = keep[labels]
    if dilate > 0 and above.any():
        above = ndimage.binary_dilation(above, structure=_element(dilate, structure))
    return above


def _element(radius: int, shape: str) -> np.ndarray:
    size = 2 * radius + 1
    if shape == "box":
        return np.ones((size, size), dtype=bool)
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return x * x + y * y <= radius * radius

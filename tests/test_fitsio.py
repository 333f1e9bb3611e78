"""Reading archive-like files: RICE compression, BZERO, the PXSPACE card, damaged files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits

from vircamframe.errors import FitsInputError
from vircamframe.fitsio import FrameStack, check_fits, clean_header, float32_pixels, open_fits, read_detector
from vircamframe.numerics.stats import masked_median

from rawfactory import write_raw


@pytest.fixture
def images():
    rng = np.random.default_rng(3)
    return [rng.integers(0, 65535, size=(20, 24)).astype(np.float64) for _ in range(16)]


def test_uint16_with_bzero_reads_exactly(tmp_path, images):
    path = write_raw(tmp_path / "r.fits", "DARK", images)
    with fits.open(path) as hdul:  # stored as int16 + BZERO 32768, as raw VIRCAM data
        assert hdul[1].header["BITPIX"] == 16 and hdul[1].header["BZERO"] == 32768
    data, header = read_detector(path, "DET1.CHIP7")
    assert data.dtype == np.float32
    np.testing.assert_array_equal(data, images[6])
    assert "BZERO" not in header and header["ESO DET CHIP NO"] == 7


def test_rice_compressed_equals_plain(tmp_path, images):
    plain = write_raw(tmp_path / "p.fits", "DARK", images)
    packed = write_raw(tmp_path / "c.fits.fz", "DARK", images, compress=True)
    with fits.open(packed, disable_image_compression=True) as hdul:
        assert hdul[1].header["ZCMPTYPE"] == "RICE_1"
    for ext in ("DET1.CHIP1", "DET1.CHIP16"):
        np.testing.assert_array_equal(read_detector(packed, ext)[0], read_detector(plain, ext)[0])
    with FrameStack([plain, packed]) as stack:
        cube, headers = stack.read("DET1.CHIP3", all_headers=True)
    assert cube.shape == (2, 20, 24) and len(headers) == 2
    assert not any(k.startswith("Z") for k in headers[1])  # compression keys are layout


def test_pxspace_card_is_repaired_and_writable(tmp_path, images):
    path = write_raw(tmp_path / "r.fits", "DARK", images)
    assert b"PXSPACE = 2.000e-05" in path.read_bytes()  # the real, non-standard card
    _, header = read_detector(path, "DET1.CHIP1")
    assert header["ESO DET CHIP PXSPACE"] == pytest.approx(2e-5)
    fits.PrimaryHDU(header=clean_header(header)).writeto(io.BytesIO(), output_verify="exception")


def test_truncated_file_is_named(tmp_path, images):
    path = write_raw(tmp_path / "r.fits", "DARK", images)
    path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(FitsInputError, match=r"r\.fits: .*truncated"):
        check_fits(path)


@pytest.mark.parametrize("content", [b"", b"not a fits file" * 300])
def test_not_fits(tmp_path, content):
    path = tmp_path / "x.fits"
    path.write_bytes(content)
    with pytest.raises(FitsInputError, match=r"x\.fits: not a FITS file"):
        check_fits(path)


def test_missing_extension_and_file(tmp_path, images):
    path = write_raw(tmp_path / "r.fits", "DARK", images[:4])
    with pytest.raises(FitsInputError, match=r"r\.fits: no extension DET1.CHIP5"):
        read_detector(path, "DET1.CHIP5")
    with pytest.raises(FitsInputError, match=r"gone\.fits"):
        check_fits(tmp_path / "gone.fits")


def test_float32_pixels_swaps_in_place_only_when_not_memory_mapped(tmp_path):
    image = np.arange(48, dtype=np.float32).reshape(6, 8)
    path = tmp_path / "tile.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image, name="TILE")]).writeto(path)
    with open_fits(path, memmap=False) as hdul:
        pixels = float32_pixels(hdul["TILE"])
        assert pixels.dtype == np.dtype("=f4") and np.array_equal(pixels, image)
        assert pixels is hdul["TILE"].data  # the one array, swapped in place
        assert float32_pixels(hdul["TILE"]) is pixels  # a second call costs nothing
    with open_fits(path) as hdul:  # memory-mapped: a copy, the file untouched
        pixels = float32_pixels(hdul["TILE"])
        assert pixels.dtype == np.dtype("=f4") and not np.shares_memory(pixels, hdul["TILE"].data)
    assert np.array_equal(fits.getdata(path, "TILE"), image)


def test_masked_median_exact_when_small_and_sampled_when_large():
    rng = np.random.default_rng(2)
    data = rng.normal(10.0, 1.0, (300, 200)).astype(np.float32)
    data[0, 0] = np.nan
    mask = rng.random(data.shape) > 0.3
    before = data.copy()
    expected = np.median(data[mask & np.isfinite(data)])
    assert masked_median(data, mask) == pytest.approx(expected, abs=1e-6)  # 60000 px: all of them
    # a piecewise-constant map (an exposure-time map) sampled on every 4th row and column
    steps = np.repeat(np.array([40.0, 80.0, 120.0], np.float32), 100)[:, None] * np.ones((1, 200), np.float32)
    assert masked_median(steps, np.ones(steps.shape, bool), max_pixels=4000) == 80.0
    assert np.isnan(masked_median(data, np.zeros(data.shape, bool)))
    assert np.array_equal(data, before, equal_nan=True)  # the map itself is not reordered

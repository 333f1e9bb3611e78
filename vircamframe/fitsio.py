"""Reading VIRCAM FITS files as they come from the archive.

Copes with what real files throw at a reader: RICE tile-compressed extensions (``.fits.fz``),
16-bit integers stored with ``BZERO``, the non-standard ``HIERARCH ESO DET CHIP PXSPACE``
card (a lower-case exponent that astropy reads but refuses to write), and truncated files
(caught up front, not half-way through a combine). Pixel data are returned one detector at a
time as float32, reading only that extension's bytes, so that no reader ever holds all
sixteen detectors of every input. (Memory-mapping buys nothing here: raw data are scaled
16-bit integers or compressed, and become a float32 copy in any case.)
"""

from __future__ import annotations

import mmap
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from .errors import FitsInputError

__all__ = [
    "STRUCTURAL_KEYS",
    "FrameStack",
    "check_fits",
    "clean_header",
    "detector_extnames",
    "float32_pixels",
    "get_key",
    "open_fits",
    "read_detector",
    "read_primary_header",
    "read_rows",
    "row_bands",
]

# Keys that describe a HDU's layout or integrity, never its content: not copied into products.
STRUCTURAL_KEYS = frozenset(
    {
        "SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND",
        "PCOUNT", "GCOUNT", "BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "ZIMAGE",
        "ZBITPIX", "ZNAXIS", "ZNAXIS1", "ZNAXIS2", "ZTILE1", "ZTILE2", "ZCMPTYPE", "ZNAME1",
        "ZVAL1", "ZNAME2", "ZVAL2", "ZQUANTIZ", "ZDITHER0", "ZSIMPLE", "ZEXTEND", "ZTENSION",
        "ZPCOUNT", "ZGCOUNT", "ZHECKSUM", "ZDATASUM", "TFIELDS", "INHERIT",
    }
)


@contextmanager
def open_fits(
    path: str | os.PathLike, memmap: bool = True, check: bool = True
) -> Iterator[fits.HDUList]:
    """Open a FITS file; errors name the file.

    The HDU list is opened lazily (headers on demand) and memory-mapped where the data are
    not compressed or scaled. With ``check`` the file is first checked to be complete
    (:func:`check_fits`); readers in hot loops pass ``check=False`` for files a recipe has
    already validated.
    """
    path = Path(path)
    if check:
        check_fits(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            warnings.simplefilter("ignore", AstropyUserWarning)
            hdul = fits.open(path, memmap=memmap, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError) as err:
        raise FitsInputError(f"{path}: not a readable FITS file ({err})") from None
    try:
        yield hdul
    finally:
        hdul.close()


def check_fits(path: str | os.PathLike) -> int:
    """Check that ``path`` is a complete FITS file and return its number of HDUs.

    Raises
    ------
    FitsInputError
        When the file is missing, unreadable, not FITS, or shorter than its headers promise.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            start = handle.read(30)
    except OSError as err:
        raise FitsInputError(f"{path}: cannot read ({err.strerror})") from None
    if not start.startswith(b"SIMPLE  =") or size < 2880:
        raise FitsInputError(f"{path}: not a FITS file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                last = hdul[-1].fileinfo()
                count = len(hdul)
    except Exception as err:  # astropy raises a zoo of types on damaged files
        raise FitsInputError(f"{path}: corrupt or truncated FITS file ({err})") from None
    # datSpan includes the block padding, which an archive file always carries. A last HDU
    # cut short is either missing data (end > size) or dropped by astropy as an unreadable
    # header, leaving bytes after the last complete HDU (end < size).
    end = last["datLoc"] + last["datSpan"]
    if end > size:
        raise FitsInputError(f"{path}: truncated FITS file ({end - size} bytes missing)")
    if end < size:
        raise FitsInputError(
            f"{path}: truncated or corrupt FITS file ({size - end} bytes after the last complete HDU)"
        )
    return count


def clean_header(header: fits.Header) -> fits.Header:
    """A copy of ``header`` without layout keys, with non-standard value cards repaired.

    Repairs cards such as ``HIERARCH ESO DET CHIP PXSPACE = 2.000e-05`` (a lower-case
    exponent) so that the header can be written again.
    """
    cleaned = fits.Header()
    for card in header.cards:
        if card.keyword in STRUCTURAL_KEYS:
            continue
        cleaned.append(_standard_card(card), end=True)
    return cleaned


def _standard_card(card: fits.Card) -> fits.Card:
    """``card``, or a re-formatted copy of it when its value string breaks the FITS standard."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            card.verify("exception")
        return card
    except fits.VerifyError:
        keyword = card.keyword
        if card.image.startswith("HIERARCH") or len(keyword) > 8:
            keyword = f"HIERARCH {keyword}"
        return fits.Card(keyword, card.value, card.comment)


def read_primary_header(path: str | os.PathLike) -> fits.Header:
    """The primary header of a file, repaired (see :func:`clean_header`)."""
    with open_fits(path) as hdul:
        return clean_header(hdul[0].header)


def get_key(header: fits.Header, key: str, path: str | os.PathLike, kind: type = str):
    """Return ``header[key]`` converted to ``kind``; a missing key is an error naming the file."""
    if key not in header:
        raise FitsInputError(f"{path}: missing keyword {key}")
    try:
        return kind(header[key])
    except (TypeError, ValueError):
        raise FitsInputError(f"{path}: keyword {key} = {header[key]!r} is not {kind.__name__}") from None


def image_hdus(hdul: fits.HDUList) -> list:
    """The extensions holding a 2-D image, from their headers alone (no pixel is read)."""
    return [hdu for hdu in hdul[1:] if hdu.is_image and hdu.header.get("NAXIS", 0) == 2]


def float32_pixels(hdu) -> np.ndarray:
    """An image HDU's pixels as native-order float32, with as few copies as possible.

    A file opened without memory mapping holds its pixels in a big-endian array of its own:
    that array is byte-swapped in place and kept as the HDU's data, so the pixels are in
    memory once (a full tile is 0.8 GB). Otherwise (memory-mapped, scaled or other types) a
    float32 copy is returned.
    """
    data = hdu.data
    if data.dtype == np.dtype(">f4") and data.flags.writeable and not _memory_mapped(data):
        data.byteswap(inplace=True)
        hdu.data = data = data.view(np.float32)
        return data
    return np.asarray(data, np.float32)


def _memory_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a memory-mapped file (astropy's views end in an mmap)."""
    base = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def detector_extnames(hdul: fits.HDUList) -> list[str]:
    """The names of the image extensions (``DET1.CHIP1``...) in file order."""
    return [hdu.name for hdu in hdul[1:] if hdu.is_image]


def _find_extension(hdul: fits.HDUList, extname: str, path: Path):
    try:
        return hdul[extname]
    except KeyError:
        raise FitsInputError(f"{path}: no extension {extname}") from None


def read_detector(
    path: str | os.PathLike, extname: str, with_header: bool = True
) -> tuple[np.ndarray, fits.Header | None]:
    """Read one detector of one file as float32 (scaled by BZERO/BSCALE where present).

    Returns
    -------
    data : ndarray of float32
    header : Header or None
        The extension header, cleaned of layout keys (see :func:`clean_header`).
    """
    path = Path(path)
    # No memmap: scaled (BZERO) and compressed data cannot be mapped, and reading just this
    # extension's bytes is what we want anyway.
    with open_fits(path, memmap=False, check=False) as hdul:
        hdu = _find_extension(hdul, extname, path)
        data = _as_float32(hdu, path)
        header = clean_header(hdu.header) if with_header else None
    return data, header


def _as_float32(hdu, path: Path, copy: bool = True) -> np.ndarray:
    try:
        data = hdu.data
    except Exception as err:
        raise FitsInputError(f"{path}[{hdu.name}]: cannot read pixel data ({err})") from None
    if data is None or data.ndim != 2:
        raise FitsInputError(f"{path}[{hdu.name}]: expected a 2-D image")
    return np.array(data, dtype=np.float32, copy=True) if copy else data


def row_bands(ny: int, step: int, bands: int = 8) -> list[slice]:
    """``bands`` evenly spaced bands of contiguous rows holding ``1/step`` of ``ny`` rows."""
    height = max(1, ny // (step * bands))
    return [slice(y0, y0 + height) for y0 in np.linspace(0, ny - height, bands).astype(int)]


def read_rows(
    path: str | os.PathLike, extnames: Sequence[str], step: int, bands: int = 8
) -> dict[str, np.ndarray]:
    """A ``1/step`` sample of the rows of the given detectors of one file, as float32.

    The rows come in ``bands`` evenly spaced bands of contiguous rows, each read in one go
    through astropy's ``section`` (for tile-compressed data only those tiles are
    decompressed), so that a pre-pass over many frames costs little more than ``1/step`` of
    reading them. The file is opened once and not memory-mapped: the kernel's read-ahead
    would map the whole file into the process.
    """
    path = Path(path)
    rows: dict[str, np.ndarray] = {}
    try:
        hdul = fits.open(path, memmap=False, lazy_load_hdus=True)
    except (OSError, ValueError, TypeError) as err:
        raise FitsInputError(f"{path}: not a readable FITS file ({err})") from None
    with hdul:
        for extname in extnames:
            hdu = _find_extension(hdul, extname, path)
            try:
                rows[extname] = np.concatenate(
                    [np.asarray(hdu.section[band, :], dtype=np.float32)
                     for band in row_bands(hdu.shape[0], step, bands)]
                )
            except Exception as err:
                raise FitsInputError(f"{path}[{extname}]: cannot read pixel data ({err})") from None
    return rows


class FrameStack:
    """Many files read detector by detector, each file opened once for the whole loop.

    Keeping the files open makes reading detector ``k`` of every file cost one seek each,
    instead of re-parsing the headers before it (quadratic in the number of extensions); each
    extension's pixels are dropped from astropy's cache as soon as they are copied, so memory
    holds one detector's cube. Use as a context manager::

        with FrameStack(paths) as stack:
            for extname in extnames:
                cube, headers = stack.read(extname)
    """

    def __init__(self, paths: Sequence[str | os.PathLike]) -> None:
        self.paths = [Path(p) for p in paths]
        self._hduls: list[fits.HDUList] = []

    def __enter__(self) -> FrameStack:
        for path in self.paths:
            try:
                self._hduls.append(fits.open(path, memmap=False, lazy_load_hdus=True))
            except (OSError, ValueError, TypeError) as err:
                self.close()
                raise FitsInputError(f"{path}: not a readable FITS file ({err})") from None
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every file."""
        for hdul in self._hduls:
            hdul.close()
        self._hduls = []

    def read(
        self, extname: str, with_headers: bool = True, all_headers: bool = False,
        require_valid: bool = True,
    ) -> tuple[np.ndarray, list[fits.Header]]:
        """The same detector of every file as one float32 cube (frames, ny, nx), and headers.

        The headers are cleaned (:func:`clean_header`): only the first file's (products take
        their extension header from the first input), every file's with ``all_headers``, or
        none without ``with_headers``. ``require_valid=False`` accepts a detector with no
        finite pixel (a dead detector of a calibrated pawprint), which is otherwise an error.

        Raises
        ------
        FitsInputError
            For a missing extension, unreadable pixels, a shape that differs from the first
            file's, or a detector without a single finite pixel.
        """
        if not self._hduls:
            raise RuntimeError("FrameStack.read outside its 'with' block")
        cube: np.ndarray | None = None
        headers: list[fits.Header] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            for index, (path, hdul) in enumerate(zip(self.paths, self._hduls, strict=True)):
                hdu = _find_extension(hdul, extname, path)
                data = _as_float32(hdu, path, copy=False)
                if cube is None:
                    cube = np.empty((len(self.paths), *data.shape), dtype=np.float32)
                elif data.shape != cube.shape[1:]:
                    raise FitsInputError(
                        f"{path}[{extname}]: shape {data.shape} differs from {cube.shape[1:]} of "
                        f"{self.paths[0]}"
                    )
                cube[index] = data
                del data
                del hdu.data  # drop astropy's cached copy: one detector in memory at a time
                if require_valid and not np.isfinite(cube[index]).any():
                    raise FitsInputError(f"{path}[{extname}]: no valid pixel (all NaN)")
                if with_headers and (all_headers or index == 0):
                    headers.append(clean_header(hdu.header))
        assert cube is not None
        return cube, headers

"""The one product writer: ESO-style MEFs written atomically, with DATAMD5 and checksums.

A product file is built extension by extension (one detector at a time, so a writer never
holds all sixteen) into a temporary file in the destination folder. Committing computes
``DATAMD5`` from the data units on disk, patches it into the primary header in place (the
header keeps its size), adds ``CHECKSUM``/``DATASUM`` to every HDU, flushes to disk and renames
the file over its final name. A run killed at any moment therefore leaves either no product,
or the previous one, or the complete new one — never a torn file — and the temporary file it
leaves is hidden (``.<name>.<pid>.tmp``) and cleaned up by the next writer of that name.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .dfs import data_md5, set_card
from .errors import ProductExistsError, ProductWriteError

__all__ = ["ProductFile", "qc_cards"]


def qc_cards(qc: Mapping[str, tuple[Any, str]] | None) -> list[tuple[str, Any, str]]:
    """``{"DARKMED": (12.3, "[ADU] median")}`` -> ``("ESO QC DARKMED", 12.3, "...")`` cards."""
    cards = []
    for name, (value, comment) in (qc or {}).items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = "NaN"  # FITS has no NaN literal; a string keeps the card and its meaning
        cards.append((f"ESO QC {name}", value, comment))
    return cards


class ProductFile:
    """A product being written; use as a context manager (commit on success, abort on error).

    Parameters
    ----------
    path : Path
        Final location of the product.
    primary_header : Header
        Complete primary header (from :func:`vircamframe.dfs.build_primary_header`), with the
        ``DATAMD5`` placeholder.
    overwrite : bool
        Replace an existing file at ``path``; otherwise an existing file is an error.
    """

    def __init__(self, path: str | os.PathLike, primary_header: fits.Header, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise ProductExistsError(f"{self.path}: product exists (use --overwrite to replace it)")
        self.overwrite = overwrite
        self.category = str(primary_header.get("ESO PRO CATG", ""))
        self.tmp_path = self.path.parent / f".{self.path.name}.{os.getpid()}.tmp"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_orphans(self.path)
        self._committed = False
        with self._disk_errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            # Checksum cards now, so that patching DATAMD5 later keeps the header size.
            fits.PrimaryHDU(header=primary_header).writeto(
                self.tmp_path, overwrite=True, checksum=True
            )
        self.primary_header = primary_header
        self.extnames: list[str] = []

    # --- building ---------------------------------------------------------------------
    def add_image(
        self,
        extname: str,
        data: np.ndarray,
        header: fits.Header | None = None,
        qc: Mapping[str, tuple[Any, str]] | None = None,
        provenance: Sequence[str] = (),
        float64: bool = False,
    ) -> None:
        """Append one image extension (float32 unless the array is integer or boolean).

        ``float64=True`` keeps double precision, for values float32 cannot hold (MJDs: its
        7 digits leave minutes at MJD 58000).
        """
        if data.dtype == bool:
            data = data.astype(np.uint8)
        elif data.dtype.kind == "f" and data.dtype != np.float32 and not float64:
            data = data.astype(np.float32)
        self._append(fits.ImageHDU(data=data, header=self._ext_header(extname, header, qc, provenance)))

    def add_header(
        self,
        extname: str,
        header: fits.Header,
        qc: Mapping[str, tuple[Any, str]] | None = None,
        provenance: Sequence[str] = (),
    ) -> None:
        """Append a data-less image extension: a detector's header (a WCS solution, say).

        The size keywords of the image it describes (``NAXISn``) are left out: the extension
        has no data.
        """
        header = fits.Header([c for c in header.cards if not c.keyword.startswith("NAXIS")])
        self._append(fits.ImageHDU(data=None, header=self._ext_header(extname, header, qc, provenance)))

    def add_table(
        self,
        extname: str,
        table: Table,
        header: fits.Header | None = None,
        qc: Mapping[str, tuple[Any, str]] | None = None,
        units: Mapping[str, str] | None = None,
    ) -> None:
        """Append one binary-table extension.

        ``units`` gives ``TUNITn`` strings by column name, written as they are: the usual
        detector units (``e-/ADU``, ``ADU``) are not in the FITS unit vocabulary astropy checks.
        """
        hdu = fits.BinTableHDU(table, name=extname)
        for card in self._ext_header(extname, header, qc, ()).cards:
            if card.keyword not in hdu.header:
                hdu.header.append(card)
        for index, name in enumerate(table.colnames, start=1):
            if units and name in units:
                hdu.columns[name].unit = units[name]  # the column definitions are what gets written
                hdu.header[f"TUNIT{index}"] = units[name]
        self._append(hdu)

    def _ext_header(self, extname, header, qc, provenance) -> fits.Header:
        ext = fits.Header()
        if header is not None:
            for card in header.cards:
                if card.keyword not in ("EXTNAME", "XTENSION", "BITPIX", "PCOUNT", "GCOUNT"):
                    ext.append(card, end=True)
        ext["EXTNAME"] = (extname, "Extension name")
        for n, name in enumerate(provenance, start=1):
            set_card(ext, f"ESO DRS PROV{n}", name, "Input file")
        for key, value, comment in qc_cards(qc):
            set_card(ext, key, value, comment)
        return ext

    def _append(self, hdu: fits.hdu.base.ExtensionHDU) -> None:
        if hdu.name in self.extnames:
            raise ValueError(f"{self.path.name}: extension {hdu.name} written twice")
        with self._disk_errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            if isinstance(hdu, fits.ImageHDU) and hdu.data is not None and "BZERO" not in hdu.header:
                _append_image(self.tmp_path, hdu)
            else:
                fits.append(self.tmp_path, hdu.data, header=hdu.header, checksum=True)
        self.extnames.append(hdu.name)

    # --- finishing ----------------------------------------------------------------------
    @contextmanager
    def _disk_errors(self) -> Iterator[None]:
        """Turn an I/O failure (full disk, lost permission) into a one-line error, cleaned up."""
        try:
            yield
        except OSError as err:
            self.abort()
            reason = err.strerror or str(err)
            raise ProductWriteError(f"{self.path}: cannot write product ({reason})") from None

    def commit(self) -> Path:
        """Fill in DATAMD5 and checksums, flush, and move the file into place atomically."""
        with self._disk_errors():
            return self._commit()

    def _commit(self) -> Path:
        md5 = data_md5(self.tmp_path)
        header = self.primary_header.copy()
        header["DATAMD5"] = md5
        primary = fits.PrimaryHDU(header=header)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            primary.add_checksum()
            block = primary.header.tostring().encode("ascii")
        with open(self.tmp_path, "r+b") as handle:
            old = fits.Header.fromfile(handle)
            if len(old.tostring()) != len(block):
                raise RuntimeError(f"{self.path.name}: primary header changed size while patching")
            handle.seek(0)
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        if self.path.exists() and not self.overwrite:
            self.abort()
            raise ProductExistsError(f"{self.path}: product appeared while writing; not replaced")
        os.replace(self.tmp_path, self.path)
        _fsync_dir(self.path.parent)
        self._committed = True
        self.primary_header = header
        return self.path

    def abort(self) -> None:
        """Remove the temporary file; the destination is left as it was."""
        self.tmp_path.unlink(missing_ok=True)

    def __enter__(self) -> ProductFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


_CHUNK_BYTES = 32 << 20  # big-endian data written (and summed) in pieces of about this size


def _ones_complement_add(total: int, chunk: np.ndarray) -> int:
    """FITS checksum arithmetic: ``total`` plus the big-endian 32-bit words of ``chunk`` (bytes,
    zero-padded to a whole word, as the data unit's padding is), with end-around carry."""
    if extra := chunk.size % 4:
        chunk = np.concatenate([chunk, np.zeros(4 - extra, np.uint8)])
    total += int(chunk.view(">u4").sum(dtype=np.uint64))
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def _append_image(path: Path, hdu: fits.ImageHDU) -> None:
    """Append an unscaled image HDU, with DATASUM and CHECKSUM, at the end of ``path``.

    ``fits.append`` re-parses every header already in the file, so writing 16 extensions one
    by one costs quadratic time; a FITS file is a sequence of 2880-byte blocks, and an image
    extension is its header block and its big-endian data, zero-padded. The data go out a few
    rows at a time, byte-swapped and summed per piece: astropy's ``add_checksum`` and a
    whole-array byte swap would each copy the image (a full tile is 0.8 GB, an MJD map 1.7 GB).
    """
    data = hdu.data
    big_endian = data.dtype.newbyteorder(">")
    row_bytes = data[0].nbytes if data.ndim > 1 else data.itemsize
    rows = max(4, _CHUNK_BYTES // max(row_bytes, 1) // 4 * 4)  # whole 32-bit words per piece
    header = hdu.header
    # both cards go in now, zero, so the header written first has its final size; their values
    # are known once the data are summed, and the header is written again over itself
    header.set("CHECKSUM", "0" * 16, "HDU checksum")
    header.set("DATASUM", "0", "data unit checksum", after="CHECKSUM")
    with open(path, "r+b") as handle:
        header_at = handle.seek(0, os.SEEK_END)
        handle.write(header.tostring().encode("ascii"))
        datasum, written = 0, 0
        for start in range(0, len(data), rows):
            piece = np.ascontiguousarray(data[start : start + rows], dtype=big_endian).view(np.uint8).ravel()
            datasum = _ones_complement_add(datasum, piece)
            handle.write(piece)
            written += piece.size
        handle.write(b"\0" * (-written % 2880))
        header["DATASUM"] = str(datasum)
        header["CHECKSUM"] = hdu._calculate_checksum(datasum)  # astropy's encoding of the HDU sum
        handle.seek(header_at)
        handle.write(header.tostring().encode("ascii"))


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of ``path`` left by writers that were killed."""
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        pid = orphan.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            orphan.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

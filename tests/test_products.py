"""The product writer: DFS header block, DATAMD5, checksums, atomic writes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from astropy.io import fits

from vircamframe import run_recipe
from vircamframe.dfs import ProcessingRecord, build_primary_header, next_record_index
from vircamframe.products import ProductFile


def independent_datamd5(path) -> str:
    """MD5 of the data units recomputed from the arrays, not from the file's byte spans."""
    digest = hashlib.md5()
    with fits.open(path) as hdul:
        for hdu in hdul[1:]:
            raw = np.ascontiguousarray(hdu.data, dtype=hdu.data.dtype.newbyteorder(">")).tobytes()
            digest.update(raw + b"\0" * (-len(raw) % 2880))
    return digest.hexdigest()


def test_master_dark_header_block(dark_set, tmp_path):
    product = run_recipe("vircam_dark_combine", dark_set.sof, {"thresh": 4.5}, output_dir=tmp_path / "o")
    path = product[0].path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum mismatch is an AstropyUserWarning
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            primary = hdul[0].header
            ext = hdul[5].header
    assert primary["NAXIS"] == 0
    assert primary["DATAMD5"] == independent_datamd5(path)
    assert primary["PIPEFILE"] == path.name
    assert primary["PROCSOFT"].startswith("vircamframe/")
    assert primary["ESO PRO DID"] == "ESO-VLT-DIC.PRO-1.16"
    assert primary["ESO PRO CATG"] == "MASTER_DARK"
    assert primary["ESO PRO TYPE"] == "REDUCED"
    assert primary["ESO PRO TECH"] == "IMAGE"
    assert primary["ESO PRO SCIENCE"] is False
    assert primary["ESO PRO DATANCOM"] == 5
    assert primary["ESO PRO ANCESTOR"] == "VCAM.MJD60000.00000.fits"  # the first raw's ARCFILE
    assert primary["ESO PRO REC1 ID"] == "vircam_dark_combine"
    assert primary["ESO PRO REC1 DRS ID"].startswith("vircamframe/")
    assert primary["ESO PRO REC1 PIPE ID"].startswith("vircamframe/")
    for j, raw in enumerate(dark_set.files, start=1):
        assert primary[f"ESO PRO REC1 RAW{j} NAME"] == raw.name
        assert primary[f"ESO PRO REC1 RAW{j} CATG"] == "DARK"
    assert "ESO PRO REC1 RAW6 NAME" not in primary
    params = {primary[f"ESO PRO REC1 PARAM{j} NAME"]: j for j in range(1, 6)}
    assert set(params) == {"combtype", "scaletype", "xrej", "thresh", "hot_thresh"}
    assert "ESO PRO REC1 PARAM6 NAME" not in primary
    j = params["thresh"]
    assert primary[f"ESO PRO REC1 PARAM{j} VALUE"] == "4.5"
    assert primary.comments[f"ESO PRO REC1 PARAM{j} VALUE"] == "Default: 5.0"
    assert primary[f"ESO PRO REC1 PARAM{params['xrej']} VALUE"] == "TRUE"
    # inherited from the raw: everything but DPR, and not the ancestor's own identity
    assert primary["ESO DET DIT"] == 10.0 and primary["INSTRUME"] == "VIRCAM"
    assert "ESO DPR CATG" not in primary and "ARCFILE" not in primary
    assert "CHECKSUM" in primary and "DATASUM" in primary
    # extension: raw detector keys, provenance, QC
    assert ext["EXTNAME"] == "DET1.CHIP5" and ext["ESO DET CHIP NO"] == 5
    assert ext["ESO DET CHIP PXSPACE"] == pytest.approx(2e-5)
    assert [ext[f"ESO DRS PROV{i}"] for i in range(1, 6)] == [f.name for f in dark_set.files]
    assert {"ESO QC DARKMED", "ESO QC DARKRMS", "CHECKSUM", "DATASUM"} <= set(ext)


def test_calibration_inputs_and_product_of_products(dark_set, tmp_path):
    master = run_recipe("vircam_dark_combine", dark_set.sof, output_dir=tmp_path / "o")[0].path
    ancestor = fits.getheader(master)
    record = ProcessingRecord(
        "vircam_next", "vircamframe/0", "vircamframe/0",
        raws=[(master, "MASTER_DARK")], calibs=[(master, "MASTER_DARK")],
    )
    header = build_primary_header(ancestor, record, "MASTER_TEST", "t.fits", "x", 1, False)
    assert next_record_index(ancestor) == 2
    assert header["ESO PRO REC1 ID"] == "vircam_dark_combine"  # the earlier record is kept
    assert header["ESO PRO REC2 ID"] == "vircam_next"
    assert header["ESO PRO REC2 RAW1 CATG"] == "MASTER_DARK"
    assert header["ESO PRO REC2 CAL1 DATAMD5"] == ancestor["DATAMD5"]
    assert header["ESO PRO CATG"] == "MASTER_TEST"
    assert header["ESO PRO ANCESTOR"] == ancestor["ESO PRO ANCESTOR"]


WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from vircamframe.dfs import ProcessingRecord, build_primary_header
    from vircamframe.products import ProductFile
    header = build_primary_header(None, ProcessingRecord("r", "p", "d"), "MASTER_DARK",
                                  "p.fits", "x", 1, False)
    with ProductFile(sys.argv[1], header, overwrite=True) as product:
        for chip in range(1, 17):
            product.add_image(f"DET1.CHIP{chip}", np.full((256, 256), float(chip), np.float32))
            print("wrote", chip, flush=True)
            time.sleep(0.2)
    """
)


@pytest.mark.parametrize("previous", [False, True])
def test_killed_writer_leaves_no_torn_file(tmp_path, previous):
    target = tmp_path / "p.fits"
    old_md5 = None
    if previous:
        header = build_primary_header(None, ProcessingRecord("r", "p", "d"), "MASTER_DARK", "p.fits",
                                      "x", 1, False)
        with ProductFile(target, header) as product:
            product.add_image("DET1.CHIP1", np.zeros((8, 8), np.float32))
        old_md5 = hashlib.md5(target.read_bytes()).hexdigest()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("wrote 4"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if previous:  # the old product is untouched and still valid
        assert hashlib.md5(target.read_bytes()).hexdigest() == old_md5
        with fits.open(target, checksum=True) as hdul:
            assert len(hdul) == 2
    else:
        assert not target.exists()
    orphans = list(tmp_path.glob(".p.fits.*.tmp"))
    assert len(orphans) == 1  # hidden, never under the product's name
    # the next writer of that name clears the orphan of the dead process
    header = build_primary_header(None, ProcessingRecord("r", "p", "d"), "MASTER_DARK", "p.fits", "x", 1,
                                  False)
    with ProductFile(target, header, overwrite=True) as product:
        product.add_image("DET1.CHIP1", np.ones((8, 8), np.float32))
    assert not list(tmp_path.glob(".p.fits.*.tmp"))


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A 64 kB tmpfs when we may mount one (root, as in CI); else writes that fail with ENOSPC."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
                             capture_output=True).returncode == 0
    if not mounted:
        import errno

        def no_space(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("vircamframe.products.fits.append", no_space)
    yield mountpoint
    if mounted:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_full_disk_is_a_clean_one_line_error(dark_set, full_disk):
    from vircamframe.errors import ProductWriteError

    with pytest.raises(ProductWriteError) as err:
        run_recipe("vircam_dark_combine", dark_set.sof, output_dir=full_disk)
    assert "cannot write product (No space left on device)" in str(err.value)
    assert "master_dark" in str(err.value) and "\n" not in str(err.value)
    assert list(full_disk.iterdir()) == []  # no product, no temporary file


@pytest.mark.parametrize("dtype, shape", [(np.float32, (1030, 77)), (np.float64, (9, 5)),
                                          (np.uint8, (301, 7)), (np.int16, (3, 1001)), (np.int32, (2, 3))])
def test_image_checksums_written_piecewise_agree_with_astropy(tmp_path, monkeypatch, dtype, shape):
    """Images are byte-swapped, summed and written a few rows at a time: DATASUM and CHECKSUM must
    be what astropy computes over the whole HDU (pieces of 16 KB here, so there are many)."""
    import vircamframe.products as products

    monkeypatch.setattr(products, "_CHUNK_BYTES", 16 << 10)
    rng = np.random.default_rng(3)
    data = (rng.normal(0, 1000, shape) if np.dtype(dtype).kind == "f"
            else rng.integers(0, np.iinfo(dtype).max, shape)).astype(dtype)
    with ProductFile(tmp_path / "p.fits", fits.Header([("HIERARCH ESO PRO CATG", "TEST")])) as out:
        out.add_image("DET1.CHIP1", data, float64=dtype == np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy warns on a checksum it cannot confirm
        with fits.open(tmp_path / "p.fits", checksum=True) as hdul:
            assert np.array_equal(hdul[1].data, data)
            assert hdul[1].verify_datasum() == 1 and hdul[1].verify_checksum() == 1
            reference = fits.ImageHDU(data)
            reference.add_datasum()
            assert hdul[1].header["DATASUM"] == reference.header["DATASUM"]

"""Everything a run writes besides the raw frames: reference catalogues, truth, SOFs.

- ``refcat/gaia_dr3.fits``: VizieR ``I/355/gaiadr3`` column names, epoch 2016.0, catalogue
  errors drawn from realistic error-vs-magnitude laws and applied to the true values;
- ``refcat/twomass_psc.fits``: VizieR ``II/246`` column names, positions at epoch 2000.0;
- ``truth/truth.json``, ``truth/stars.fits`` and the per-detector truth images (written by the
  caller, one detector at a time, with :mod:`.writer`);
- one SOF per reduction step, through :class:`vircamframe.frames.FrameSet`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..frames import Frame, FrameSet
from .catalog import GAIA_EPOCH, TWOMASS_EPOCH, propagate
from .plan import FramePlan, Plan

__all__ = ["write_refcats", "write_sofs", "write_stars_truth", "write_truth_json"]


def write_refcats(
    out: Path, cat: dict[str, np.ndarray], rng: np.random.Generator
) -> tuple[Path, Path]:
    """Write the Gaia-DR3-like and 2MASS-PSC-like reference tables.

    Returns
    -------
    tuple of Path
        ``(gaia_path, twomass_path)``.
    """
    out.mkdir(parents=True, exist_ok=True)
    n = cat["ra"].size
    # Gaia: errors grow with G; positions at 2016.0 scattered by their errors
    g = cat["g"]
    e_pos = 0.02 + 0.6 * 10 ** (0.4 * (np.maximum(g, 13.0) - 21.0)) * 1.8  # mas
    e_pm = 1.3 * e_pos
    gsel = g < 21.0
    dec_rad = np.radians(cat["dec"])
    ra_obs = cat["ra"] + rng.normal(0.0, 1.0, n) * e_pos / 3.6e6 / np.cos(dec_rad)
    dec_obs = cat["dec"] + rng.normal(0.0, 1.0, n) * e_pos / 3.6e6
    pmra = cat["pmra"] + rng.normal(0.0, 1.0, n) * e_pm
    pmdec = cat["pmdec"] + rng.normal(0.0, 1.0, n) * e_pm
    gaia = Table()
    gaia["RA_ICRS"] = ra_obs[gsel]
    gaia["DE_ICRS"] = dec_obs[gsel]
    gaia["e_RA_ICRS"] = e_pos[gsel].astype(np.float32)
    gaia["e_DE_ICRS"] = e_pos[gsel].astype(np.float32)
    gaia["pmRA"] = pmra[gsel].astype(np.float32)
    gaia["pmDE"] = pmdec[gsel].astype(np.float32)
    gaia["e_pmRA"] = e_pm[gsel].astype(np.float32)
    gaia["e_pmDE"] = e_pm[gsel].astype(np.float32)
    gaia["Gmag"] = (g[gsel] + rng.normal(0, 0.003, gsel.sum())).astype(np.float32)
    gaia["RUWE"] = cat["ruwe"][gsel].astype(np.float32)
    for col, unit in (("RA_ICRS", "deg"), ("DE_ICRS", "deg"), ("e_RA_ICRS", "mas"),
                      ("e_DE_ICRS", "mas"), ("pmRA", "mas / yr"), ("pmDE", "mas / yr"),
                      ("e_pmRA", "mas / yr"), ("e_pmDE", "mas / yr"), ("Gmag", "mag")):
        gaia[col].unit = unit
    gaia.meta["EPOCH"] = GAIA_EPOCH
    gaia.meta["CATALOG"] = "I/355/gaiadr3 (simulated)"
    gaia_path = out / "gaia_dr3.fits"
    _write_table(gaia, gaia_path)

    # 2MASS PSC: J < ~16.8, positions at 2000.0 with 80 mas scatter, photometric errors
    ra00, dec00 = propagate(cat["ra"], cat["dec"], cat["pmra"], cat["pmdec"], TWOMASS_EPOCH)
    tsel = cat["j"] + rng.normal(0, 0.1, n) < 16.8
    tm = Table()
    m = int(tsel.sum())
    tm["RAJ2000"] = ra00[tsel] + rng.normal(0, 80.0, m) / 3.6e6 / np.cos(dec_rad[tsel])
    tm["DEJ2000"] = dec00[tsel] + rng.normal(0, 80.0, m) / 3.6e6
    flags = []
    for band, limit, col in (("j", 15.8, "Jmag"), ("h", 15.1, "Hmag"), ("ks", 14.3, "Kmag")):
        mag = cat[band][tsel]
        err = 0.02 + 0.1 * 10 ** (0.4 * (mag - limit - 1.0)) * 2.5
        tm[col] = (mag + rng.normal(0, 1, m) * err).astype(np.float32)
        tm["e_" + col] = err.astype(np.float32)
        tm[col].unit = tm["e_" + col].unit = "mag"
        flags.append(np.where(mag < limit, "A", np.where(mag < limit + 0.6, "B", "C")))
    qflg = np.char.add(np.char.add(flags[0], flags[1]), flags[2])
    bad = rng.uniform(0, 1, m) < 0.02
    qflg[bad] = "UUU"
    tm["Qflg"] = qflg.astype("S3")
    tm["Cflg"] = np.where(rng.uniform(0, 1, m) < 0.03, "c00", "000").astype("S3")
    tm["RAJ2000"].unit = tm["DEJ2000"].unit = "deg"
    tm.meta["EPOCH"] = TWOMASS_EPOCH
    tm.meta["CATALOG"] = "II/246 (simulated)"
    tm_path = out / "twomass_psc.fits"
    _write_table(tm, tm_path)
    return gaia_path, tm_path


def _write_table(table: Table, path: Path) -> None:
    hdu = fits.BinTableHDU(table)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def write_stars_truth(
    path: Path, cat: dict[str, np.ndarray], band: str, mag: np.ndarray, epoch: float
) -> Path:
    """The true source list: positions at 2016.0 and at the night's epoch, magnitudes."""
    ra_e, dec_e = propagate(cat["ra"], cat["dec"], cat["pmra"], cat["pmdec"], epoch)
    t = Table()
    t["ID"] = cat["id"]
    t["KIND"] = cat["kind"]
    t["REGION"] = cat["region"]
    t["RA_2016"] = cat["ra"]
    t["DEC_2016"] = cat["dec"]
    t["PMRA"] = cat["pmra"]
    t["PMDEC"] = cat["pmdec"]
    t["RA_OBS"] = ra_e
    t["DEC_OBS"] = dec_e
    t["J_2MASS"] = cat["j"]
    t["H_2MASS"] = cat["h"]
    t["KS_2MASS"] = cat["ks"]
    t["G"] = cat["g"]
    t["MAG"] = mag
    t["R_HALF"] = cat["r_half"]
    t["AXIS_RATIO"] = cat["axis_ratio"]
    t["PA"] = cat["pa"]
    t.meta["FILTER"] = band
    t.meta["EPOCH"] = epoch
    t.meta["COMMENT"] = [
        "KIND 0 = star, 1 = galaxy. MAG = true VIRCAM magnitude in FILTER (Vega, colour "
        "equations of DESIGN.md 4). RA_OBS/DEC_OBS at EPOCH (mean epoch of the science tile;"
        " the night spans < 1e-3 yr). PMRA includes cos(dec), mas/yr."
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_table(t, path)
    return path


def write_truth_json(path: Path, truth: dict) -> Path:
    """Write ``truth.json`` (sorted keys, fixed float formatting: reproducible)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    return path


def _fmt(x: float) -> str:
    return f"{x:g}"


def write_sofs(
    sof_dir: Path,
    plan: Plan,
    paths: dict[int, Path],
    refcats: tuple[Path, Path] | None,
) -> dict[str, Path]:
    """Write one SOF per step for the frames that were simulated.

    Returns
    -------
    dict
        SOF name (without ``.sof``) -> path.
    """
    done = [fp for fp in plan.frames if fp.index in paths]

    def frames_of(tags: Iterable[str], pred=lambda fp: True) -> list[Frame]:
        tags = set(tags)
        return [Frame(paths[fp.index], fp.tag, "RAW") for fp in done
                if fp.tag in tags and pred(fp)]

    sofs: dict[str, list[Frame]] = {}
    if any(fp.tag == "DARK" for fp in done):
        for dit, ndit in plan.dark_setups:
            sofs[f"dark_{_fmt(dit)}_{ndit}"] = frames_of(
                ["DARK"], lambda fp, d=dit, n=ndit: (fp.dit, fp.ndit) == (d, n)
            )
        sofs["dark"] = list(sofs[f"dark_{_fmt(plan.science_setup[0])}_{plan.science_setup[1]}"])
    sofs["reset"] = frames_of(["RESET"])
    sofs["linearity"] = frames_of(
        ["FLAT_LAMP_LINEARITY", "DARK_LINEARITY", "FLAT_LAMP_CHECK", "DARK_CHECK"]
    )
    sofs["detector_noise"] = frames_of(["DARK_GAIN", "FLAT_LAMP_GAIN"])
    sofs["twilight_flat"] = frames_of(["FLAT_TWILIGHT"])
    sofs["science"] = frames_of(["OBJECT", "SKY"])
    sofs["standard"] = frames_of(["STD_FLUX"])
    if refcats is not None and sofs["science"]:
        sofs["refcat"] = [Frame(refcats[0], "REFCAT_ASTROM", "CALIB"),
                          Frame(refcats[1], "REFCAT_PHOTOM", "CALIB")]
    out = {}
    for name, frames in sofs.items():
        if frames:
            out[name] = FrameSet(frames).to_sof(sof_dir / f"{name}.sof")
    return out


def frame_truth(fp: FramePlan, path: Path, pixscale: float, min_fwhm_px: float) -> dict:
    """The per-frame entry of ``truth.json``."""
    entry = {
        "file": path.name,
        "index": fp.index,  # the frame's place in the full plan: it seeds the frame's random draws
        "arcfile": fp.arcfile,
        "tag": fp.tag,
        "dpr": [fp.dpr_catg, fp.dpr_type, fp.dpr_tech],
        "mjd_obs": fp.mjd,
        "dit": fp.dit,
        "ndit": fp.ndit,
        "filter": fp.filter,
        "det6_ch14_saturated_rows": list(fp.det6_event) if fp.det6_event else None,
    }
    if fp.scene == "lamp":
        entry["lamp_rate"] = fp.lamp_rate
        entry["lamp_level"] = fp.lamp_rate * fp.dit
    if fp.scene in ("sky", "twilight"):
        fwhm = max(fp.seeing, min_fwhm_px * pixscale)
        entry.update({
            "sky_level": fp.sky_rate * fp.dit,
            "sky_rate": fp.sky_rate,
            "sky_gradient_per_deg": list(fp.sky_gradient),
            "seeing": fwhm,
            "seeing_atmosphere": fp.seeing,
            "zero_point": fp.zeropoint if fp.scene == "sky" else None,
            "airmass": [fp.airmass_start, fp.airmass_end],
            "pointing": {"ra": fp.ra, "dec": fp.dec},
            "header_pointing": {"ra": fp.ra_hdr, "dec": fp.dec_hdr},
            "pointing_error_arcsec": _sep_arcsec(fp.ra, fp.dec, fp.ra_hdr, fp.dec_hdr),
            "offset_i": fp.offset_i,
            "jitter_i": fp.jitter_i,
        })
    return entry


def _sep_arcsec(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    d1, d2 = np.radians(dec1), np.radians(dec2)
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(np.radians(ra1 - ra2))
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))) * 3600.0)

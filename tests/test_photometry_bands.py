"""A Y-band night from raw frames to PHOTCAL_SCI: zero points through ESO's colour equation.

2MASS has no Y band: Y = 1.610 J - 0.610 H. The simulator renders its stars with the same
equation from their true J and H, and writes 2MASS J and H with 2MASS-like errors; a wrong
equation (or J used as Y) would be off by 0.61 (J - H), a few tenths of a magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest

from vircamframe.chain import Chain
from vircamframe.chain.manifest import chain_products
from vircamframe.simulate import simulate
from vircamframe.simulate.scoring import photometry_scores

pytestmark = pytest.mark.slow


def test_y_band_zero_points_follow_the_colour_equation(tmp_path):
    run = tmp_path / "run"
    simulate(run, preset="tiny", seed=3, filter="Y")
    out = tmp_path / "out"
    chain = Chain(run / "raw", ["PHOTCAL_SCI"], out, calibs=[run / "sof" / "refcat.sof"], executor="serial",
                  qc_plots=False)
    summary = chain.run(progress=False)
    assert summary.ok, summary.errors
    photcal = chain_products(out, "PHOTCAL_SCI")
    skysub = {f.name: f.path for f in chain_products(out, "SKYSUB_SCI")}
    illumcorr = chain_products(out, "MASTER_ILLUMCORR")
    flat = chain_products(out, "MASTER_TWILIGHT_FLAT")
    assert len(photcal) >= 6 and len(illumcorr) == 1 and len(flat) == 1
    scores = photometry_scores([f.path for f in photcal],
                               [skysub[f.name.replace(".photcal.", ".skysub.")] for f in photcal],
                               illumcorr[0].path, flat[0].path, run)
    offsets = scores["offsets"]
    # measured on tiny (seed 3): +0.016 mean, 0.025 worst. Y's equation doubles 2MASS's errors
    # (1.61 J - 0.61 H), tiny's pawprints hold ~20 usable stars, and tiny's 2.7" pixels add
    # +0.005 of crowding (test_photometry.py, exact reference); Z on `small`: see the note
    assert abs(np.mean(offsets)) < 0.02, offsets
    assert np.max(np.abs(offsets)) < 0.03, offsets

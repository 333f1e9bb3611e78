"""Accuracy of the tile catalogue (``vircam_catalog``) against the simulator's truth (issue 8, item 1).

Reads a ``vircam demo`` tree (``DEMO/data``: the simulated run and its truth;
``DEMO/pipeline/demo_science``: the chain's TILED_OBJECT_CATALOGUE) and prints, for truth stars
matched to unflagged, isolated catalogue sources above a signal-to-noise, the rms of the
position offsets per axis [mas], the median of catalogue minus true magnitude, and the rms of
the normalised residuals (:func:`vircamframe.simulate.scoring.catalogue_scores`), per S/N range.
Acceptance on ``small``: 30 mas rms, 0.02 mag median, normalised rms 0.8-1.3.

::

    .venv/bin/vircam demo --preset small --out /tmp/small
    .venv/bin/python benchmarks/catalog_accuracy.py /tmp/small
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from vircamframe.chain.manifest import chain_products
from vircamframe.simulate.scoring import catalogue_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("demo", type=Path, help="output folder of vircam demo")
    parser.add_argument("--min-snr", type=float, nargs="+", default=[20.0, 50.0, 100.0, 300.0])
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # 'ADU' is no FITS unit astropy knows
    catalogue = chain_products(args.demo / "pipeline" / "demo_science", "TILED_OBJECT_CATALOGUE")[0].path
    print(catalogue)
    for snr in args.min_snr:
        scores = catalogue_scores(catalogue, args.demo / "data", min_snr=snr)
        print(json.dumps({"min_snr": snr, **scores}))


if __name__ == "__main__":
    main()

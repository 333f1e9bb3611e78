"""Built-in sky-estimation methods (hook: ``vircam_register_sky_methods``)."""

from __future__ import annotations

from vircamframe.hookspecs import hookimpl
from vircamframe.numerics.sky import pawsky_mask_sky, sliding_window_sky


@hookimpl
def vircam_register_sky_methods(registry) -> None:
    """Register ``sliding_window`` (VISIONS) and ``pawsky_mask`` (CASU)."""
    registry.add("sliding_window", sliding_window_sky,
                 "VISIONS: frames within +-window/2, level-normalised, masked, min/max and "
                 "thresh-sigma clipped, 1/noise^2-weighted mean")
    registry.add("pawsky_mask", pawsky_mask_sky,
                 "CASU casu_pawsky_mask: median of all frames, object masks from the sky-subtracted "
                 "frames (1.5 sigma, 10 px, grown 2 px) refined until they change < 2.5 %")

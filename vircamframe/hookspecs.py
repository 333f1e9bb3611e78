"""Hook specifications: the extension points third-party packages implement.

A plugin is a module or object registered through the ``vircamframe.plugins`` entry-point
group, whose functions are marked with :data:`vircamframe.hookimpl`. The built-in strategies
register through the very same group, so a third-party package stands on equal footing:

.. code-block:: toml

    [project.entry-points."vircamframe.plugins"]
    mymasker = "vircam_mymasker.plugin"

.. code-block:: python

    from vircamframe import hookimpl

    @hookimpl
    def vircam_register_source_maskers(registry):
        registry.add("mymasker", mask_sources, "threshold + 5 px box dilation")

Alternatives are always chosen by name (``--mask_method=mymasker``), never by install order.
Each ``vircam_register_*`` hook receives a :class:`vircamframe.registry.StrategyRegistry` for
one role; ``registry.add(name, implementation, description)`` registers a strategy.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "vircamframe"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def vircam_register_source_maskers(registry: Any) -> None:
    """Register source maskers: algorithms that flag the pixels of astronomical sources.

    A source masker is a callable
    ``mask(image, variance=None, *, threshold, min_area, dilate, mesh_size) -> ndarray[bool]``
    taking one detector's background-dominated image (float32, ADU; NaN = no data) and its
    variance (ADU², or ``None``), and returning a boolean array of the same shape, ``True``
    on sources. ``threshold`` is in units of the background noise, ``min_area`` in pixels,
    ``dilate`` the growth radius in pixels and ``mesh_size`` the background mesh in pixels; a
    masker may ignore options that do not apply to it but must accept them (it may take more,
    with defaults). The image is sky-dominated and not sky-subtracted (a basic-calibrated
    pawprint, ADU per DIT); a detector without a finite pixel must give an all-``False`` mask.
    An external program is run through :func:`vircamframe.external.run_tool`, whose
    :class:`~vircamframe.errors.ExternalToolError` the recipe reports with the file and
    detector.

    Built in: ``builtin`` (background mesh, threshold, connected-area cut, disk dilation) and
    ``noisechisel`` (GNU Astro NoiseChisel, which measures the noise and grows its detections
    itself: it ignores ``threshold``, ``min_area`` and ``variance``). Selected by
    ``vircam_source_mask --mask_method``; the recipe adds bright-star and galaxy masks from
    catalogues to whatever the masker returns.

    Parameters
    ----------
    registry : StrategyRegistry
        Call ``registry.add(name, masker, description)``.
    """


@hookspec
def vircam_register_flat_methods(registry: Any) -> None:
    """Register flat-field methods for ``vircam_twilight_flat_combine --flat_method``.

    A flat method is a callable ``flat(cube, *, masks=None, combtype, thresh, xrej, **options)
    -> CombineResult`` combining one detector's stack of flat exposures (float32, shape
    ``(n, ny, nx)``), already divided by NDIT, dark-subtracted and linearised, into one image
    (the method scales the frames to a common level itself; the recipe normalises the result
    and derives the detectors' relative sensitivity separately);
    ``masks`` (boolean, same shape, ``True`` = source) may be given to methods that build
    flats from science frames; without them such a method finds the sources itself. The
    cube is handed over: the method may modify it. The result is a
    :class:`vircamframe.numerics.combine.CombineResult` whose ``image`` the recipe
    normalises. Must accept and may ignore unknown options.

    The method declares the raw tags it combines in an attribute ``input_tags`` (a tuple;
    ``("FLAT_TWILIGHT",)`` when absent), from which the recipe picks its frames: twilight
    flats must lie within ``[lthr, hthr]`` ADU per DIT, other frames only have a positive
    sky below ``hthr``. Built in: ``twilight`` (``FLAT_TWILIGHT``: multiplicative scaling,
    rejection, median) and ``sky`` (``OBJECT`` and ``SKY``: VISIONS ``flat_type: sky``,
    sources masked against the frames' median, then combined as twilight flats).

    Parameters
    ----------
    registry : StrategyRegistry
        Call ``registry.add(name, method, description)``.
    """


@hookspec
def vircam_register_sky_methods(registry: Any) -> None:
    """Register sky-estimation methods for ``vircam_sky_combine --sky_method``.

    A sky method is a callable
    ``sky(cube, masks, times, targets, **options) -> Iterator[ndarray]`` building the skies
    of one detector from its candidate sky frames:

    - ``cube``: float32, shape ``(n, ny, nx)``, basic-calibrated frames in ADU per DIT
      (divided by NDIT, linearised, dark-subtracted, flat-fielded), NaN = bad; handed over,
      the method may modify it in place;
    - ``masks``: boolean, same shape, ``True`` = source, or ``None``;
    - ``times``: shape ``(n,)``, observation times in minutes (any zero point);
    - ``targets``: a sequence of the times (minutes, same zero point) of the frames whose
      sky is wanted.

    It yields, for each target in order, the sky *pattern*: float32 ``(ny, nx)`` normalised
    to unit median, NaN where no value survived; the recipe scales it to each target frame's
    level. Invalid input (fewer than ``min_frames`` frames, a frame with no positive level)
    raises :class:`vircamframe.numerics.sky.SkyInputError` (a ``ValueError``) when the method
    is called, before anything is yielded. Common options: ``window`` (minutes, full width of
    the time window), ``min_frames`` (fewest frames per sky), ``thresh`` (clipping, sigma);
    methods have their own too, and must accept and ignore options they do not know.
    Built in: ``sliding_window`` (VISIONS: the frames within +-window/2 of each target,
    level-normalised, min/max and ``thresh``-sigma clipped, 1/noise²-weighted mean; the
    ``min_frames`` nearest when the window holds fewer, see
    :func:`vircamframe.numerics.sky.window_members`) and ``pawsky_mask`` (CASU
    ``casu_pawsky_mask``: one median sky of all the frames, with object masks found on the
    sky-subtracted frames and refined until they change by < 2.5 %; the same for every
    target).

    Parameters
    ----------
    registry : StrategyRegistry
        Call ``registry.add(name, method, description)``.
    """


@hookspec
def vircam_register_reference_catalogs(registry: Any) -> None:
    """Register reference-catalogue providers, per role (``astrometric``, ``photometric``).

    A provider is a callable ``query(ra, dec, radius, *, role, epoch=None, **options) ->
    astropy.table.Table`` returning rows with VizieR column names (Gaia DR3 ``I/355/gaiadr3``
    for the astrometric role, 2MASS PSC ``II/246`` for the photometric one), or raising
    :class:`vircamframe.errors.VircamError` when the catalogue cannot be had (offline, say).
    Built in: ``vizier`` (astroquery, cached), ``local`` (FITS tables given in the SOF).

    Parameters
    ----------
    registry : StrategyRegistry
        Call ``registry.add(name, provider, description)``.
    """


@hookspec
def vircam_product_written(product: Any) -> None:
    """Notification that a product file was committed to its final place.

    Called once per product, after the atomic rename, with a :class:`vircamframe.frames.Frame`
    (path and PRO.CATG). For archiving, databases, messaging. Exceptions raised here are
    logged as warnings and do not fail the recipe: the product is already safe on disk.

    Parameters
    ----------
    product : Frame
        The product written.
    """

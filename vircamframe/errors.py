"""Exception hierarchy.

Every error a user can provoke with bad input is a :class:`VircamError` whose message is one
line naming the culprit (file, SOF line, tag or parameter). The command-line front ends print
that line and exit non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

__all__ = [
    "ChainError",
    "ExternalToolError",
    "FitsInputError",
    "ParameterError",
    "PluginError",
    "ProductExistsError",
    "ProductWriteError",
    "QualityGateError",
    "RecipeInputError",
    "RefcatError",
    "SOFError",
    "ToolError",
    "UnknownRecipeError",
    "UsageError",
    "VircamError",
]


class VircamError(Exception):
    """Base class of every user-facing error; ``str(err)`` is a single line."""

    exit_code = 1


class UsageError(VircamError):
    """A command line that cannot be understood (exit code 2, as for option errors)."""

    exit_code = 2


class SOFError(VircamError):
    """A set-of-frames file is malformed or names a file that is not there."""


class FitsInputError(VircamError):
    """A FITS input is unreadable, truncated, or not laid out like a VIRCAM file."""


class RecipeInputError(VircamError):
    """The frames given to a recipe do not satisfy its declared inputs."""


class ParameterError(VircamError):
    """An unknown parameter, a value of the wrong type, or one out of range."""


class UnknownRecipeError(VircamError):
    """No recipe of that name is registered."""


class PluginError(VircamError):
    """A plugin failed to load or registered something invalid."""


class ProductExistsError(VircamError):
    """A product would overwrite an existing file and overwriting was not asked for."""


class ProductWriteError(VircamError):
    """A product could not be written (full disk, permissions); nothing partial is left."""


class ChainError(VircamError):
    """A chain cannot be planned or run: no recipe makes a target, a bad setup or workflow."""


class RefcatError(VircamError):
    """A reference catalogue cannot be had (offline, a missing file) or lacks a column."""


class QualityGateError(VircamError):
    """A result fails a quality gate (too few reference matches, too large a residual)."""


class ToolError(VircamError):
    """An external program (SExtractor, SCAMP, SWarp, ...) is missing or failed."""


class ExternalToolError(ToolError):
    """An external tool is not installed, exits non-zero, times out or leaves out its outputs.

    The message names the tool; for a missing one the Debian package that provides it, for a
    failed run the command line and the last lines of the tool's output.
    """

"""The one ``Background`` value: transparent, a preset colour, a custom colour, or an image."""

from __future__ import annotations

from typing import Tuple, Union

__all__ = ["Background", "BackgroundLike"]


class Background:
    """What replaces the removed background. Checked by the SDK before anything is sent."""

    __slots__ = ("_spec",)

    def __init__(self, spec: Union[str, Tuple[float, float, float]]) -> None:
        self._spec = spec

    @classmethod
    def transparent(cls) -> "Background":
        """Keep the alpha channel (needs a format with alpha: not mp4)."""
        return cls("transparent")

    @classmethod
    def preset(cls, name: str) -> "Background":
        """A preset colour: ``green``, ``white``, ``black`` or ``blue``."""
        return cls(name)

    @classmethod
    def hex(cls, value: str) -> "Background":
        """A colour written ``#rrggbb``."""
        return cls(value)

    @classmethod
    def rgb(cls, red: float, green: float, blue: float) -> "Background":
        """A colour as normalized channels, each in [0, 1]."""
        return cls((red, green, blue))

    @classmethod
    def image(cls, url: str) -> "Background":
        """An image behind the foreground."""
        return cls("image:" + url)

    @property
    def spec(self) -> Union[str, Tuple[float, float, float]]:
        """The compact form sent to the native layer."""
        return self._spec

    def __repr__(self) -> str:
        return f"Background({self._spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Background) and other._spec == self._spec

    def __hash__(self) -> int:
        return hash(self._spec)


#: A background as the methods accept it: a ``Background``, its text form, or an RGB tuple.
BackgroundLike = Union[Background, str, Tuple[float, float, float]]

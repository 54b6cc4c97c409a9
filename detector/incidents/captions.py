"""Text on evidence pictures in Chinese: a CJK font found once, text drawn with Pillow.

OpenCV's Hershey fonts know ASCII only (占道经营 comes out as ????), so captions
and box labels are drawn with Noto Sans CJK SC from the `noto-cjk-sans-otc`
package (SIL OFL 1.1), or a CJK font of the system. Without one the caller
falls back to OpenCV and ASCII text; that is logged once, never an error.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

# (file, face index): the collections hold several faces, SC is Simplified Chinese
SYSTEM_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # Debian fonts-noto-cjk
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),  # Debian fonts-wqy-microhei
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),  # Debian fonts-wqy-zenhei
)
PROBE = "占道经营"


def candidates() -> list[tuple[str, int]]:
    """Where a CJK font may be, best first."""
    found: list[tuple[str, int]] = []
    try:
        import noto_cjk_sans_otc  # the font travels with pip install: no root, no system package
    except ImportError:
        pass
    else:
        found.append((str(noto_cjk_sans_otc.FONT_PATH), 2))
    return found + list(SYSTEM_FONTS)


@cache
def cjk_font() -> tuple[str, int] | None:
    """The first candidate that opens and has the probe's glyphs; None (warned once) when none does."""
    for path, index in candidates():
        if not Path(path).is_file():
            continue
        try:
            font = ImageFont.truetype(path, 16, index=index)
        except OSError as e:
            log.warning("CJK font unreadable", extra={"path": path, "error": str(e)})
            continue
        if all(font.getmask(ch).getbbox() for ch in PROBE):
            return path, index
    log.warning(
        "no CJK font found: evidence captions fall back to ASCII text (pip install noto-cjk-sans-otc)",
        extra={"tried": [p for p, _ in candidates()]},
    )
    return None


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    found = cjk_font()
    if found is None:
        raise LookupError("no CJK font")
    return ImageFont.truetype(found[0], size, index=found[1])


def text_width(text: str, size: int) -> float:
    return _font(size).getlength(text)


def fit_size(text: str, width: int, size: int, smallest: int = 10) -> int:
    """The largest size up to `size` at which `text` fits in `width` pixels (never below `smallest`)."""
    while size > smallest and text_width(text, size) > width:
        size -= 1
    return size


def draw_text(
    scene: NDArray[np.uint8],
    text: str,
    origin: tuple[int, int],
    size: int,
    color: tuple[int, int, int],
    background: tuple[int, int, int] | None = None,
    pad: int = 0,
) -> NDArray[np.uint8]:
    """`scene` (BGR) with `text` drawn, its top-left at `origin`; colours are BGR. Needs `cjk_font()`.

    Raises:
        LookupError: no CJK font is available (check `cjk_font()` first).
    """
    font = _font(size)
    img = Image.fromarray(scene[..., ::-1])
    draw = ImageDraw.Draw(img)
    x, y = origin
    if background is not None:
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), fill=background[::-1])
    draw.text((x, y), text, font=font, fill=color[::-1])
    return np.ascontiguousarray(np.asarray(img)[..., ::-1])

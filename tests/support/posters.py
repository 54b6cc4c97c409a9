"""Synthetic street-wall scenes with small ads (小广告), for the text analyzer's tests.

A 1920x1080 scene: a façade with a rendered wall (concrete, joints, stains), a
utility pole, a permanent shop sign on the wall, a bus-stop board off the wall
and a road. Posters are A4-ish sheets with blocks of Chinese-looking glyphs
(random strokes: no CJK font is needed) and a phone number in digits (DejaVu
Sans from matplotlib when present, else OpenCV's Hershey font), rendered at 4x,
faded to low contrast, slightly rotated and perspective-warped, pasted at
character heights of 9-18 px, and the whole frame is blurred, noised and
JPEG-compressed like a camera's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

W, H = 1920, 1080
SS = 4  # supersampling of the rendered posters

#: zones of the scene, normalised (the camera config's `wall` and `pole` polygons)
WALL = [(0.04, 0.17), (0.60, 0.17), (0.60, 0.74), (0.04, 0.74)]
POLE = [(0.665, 0.22), (0.705, 0.22), (0.705, 0.86), (0.665, 0.86)]
#: where the permanent shop sign hangs (inside the wall zone), px
SIGN = (180, 200, 1000, 262)
#: a bus-stop board outside the wall zones, px (x0, y0, x1, y1)
BOARD = (1480, 260, 1860, 720)

Image_ = NDArray[np.uint8]


@dataclass(frozen=True)
class Placed:
    """A poster in a scene: its phone number (normalised) and its box in px."""

    phone: str
    box: tuple[int, int, int, int]
    char_px: float


def _font_path() -> str | None:
    try:
        import matplotlib

        p = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
        if p.exists():
            return str(p)
    except ImportError:
        pass
    for p in (Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),):
        if p.exists():
            return str(p)
    return None


@lru_cache(maxsize=64)
def _font(digit_px: int) -> ImageFont.FreeTypeFont | None:
    """A TTF font whose digits are `digit_px` high (None: no TTF available)."""
    path = _font_path()
    if path is None:
        return None
    size = digit_px
    for _ in range(4):  # DejaVu digits are ~0.73 em: converge on the size
        f = ImageFont.truetype(path, size)
        _, y0, _, y1 = f.getbbox("0123456789")
        size = max(4, round(size * digit_px / max(1, y1 - y0)))
    return ImageFont.truetype(path, size)


def _glyph(canvas: Image_, x: int, y: int, s: int, ink: tuple[int, ...], rng: np.random.Generator) -> None:
    """A Chinese-looking character: 3-7 strokes in an s x s cell."""
    t = max(1, round(s / 9))
    m = s // 10
    for _ in range(int(rng.integers(3, 8))):
        kind = rng.integers(0, 4)
        if kind == 0:  # horizontal
            yy = int(rng.integers(m, s - m))
            x0, x1 = sorted(rng.integers(m, s - m, 2))
            p0, p1 = (x + x0, y + yy), (x + max(x1, x0 + s // 3), y + yy)
        elif kind == 1:  # vertical
            xx = int(rng.integers(m, s - m))
            y0, y1 = sorted(rng.integers(m, s - m, 2))
            p0, p1 = (x + xx, y + y0), (x + xx, y + max(y1, y0 + s // 3))
        else:  # diagonal (撇/捺)
            x0, y0 = (int(v) for v in rng.integers(m, s - m, 2))
            d = int(rng.integers(s // 4, s // 2))
            sgn = 1 if kind == 2 else -1
            p0, p1 = (x + x0, y + y0), (x + int(np.clip(x0 + sgn * d, m, s - m)), y + int(np.clip(y0 + d, m, s - m)))
        cv2.line(canvas, p0, p1, ink, t, cv2.LINE_AA)


def _text(canvas: Image_, x: int, y: int, text: str, digit_px: int, ink: tuple[int, ...]) -> int:
    """Latin/digit text with its digits' top at y; returns its width."""
    font = _font(digit_px)
    if font is None:
        scale = digit_px / 22.0
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, digit_px // 8))
        cv2.putText(canvas, text, (x, y + digit_px), cv2.FONT_HERSHEY_SIMPLEX, scale, ink, max(1, digit_px // 8),
                    cv2.LINE_AA)  # fmt: skip
        return tw
    img = Image.fromarray(canvas)
    d = ImageDraw.Draw(img)
    _, top, _, _ = font.getbbox("0")
    d.text((x, y - top), text, font=font, fill=tuple(int(v) for v in ink))
    canvas[:] = np.asarray(img)
    return int(d.textlength(text, font=font))


def _text_width(text: str, digit_px: int) -> int:
    font = _font(digit_px)
    if font is None:
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, digit_px / 22.0, max(1, digit_px // 8))
        return tw
    return int(font.getlength(text))


PHONE_FORMATS = (
    lambda d: d,
    lambda d: f"{d[:3]}-{d[3:7]}-{d[7:]}",
    lambda d: f"{d[:3]} {d[3:7]} {d[7:]}",
)


def random_phone(rng: np.random.Generator) -> tuple[str, str]:
    """(printed, normalised) phone number: mostly mobiles, some landlines and 400 numbers."""
    r = rng.random()
    if r < 0.7:
        d = "1" + str(rng.choice(list("3456789"))) + "".join(str(v) for v in rng.integers(0, 10, 9))
        return PHONE_FORMATS[int(rng.integers(0, 3))](d), d
    if r < 0.85:
        area = str(rng.choice(["010", "021", "0755", "0371", "0571"]))
        n = 8 if len(area) == 3 or rng.random() < 0.7 else 7
        local = str(rng.integers(2, 10)) + "".join(str(v) for v in rng.integers(0, 10, n - 1))
        return f"{area}-{local}", f"{area}-{local}"
    d = "400" + "".join(str(v) for v in rng.integers(0, 10, 7))
    return f"{d[:3]}-{d[3:6]}-{d[6:]}", d


def render_poster(
    rng: np.random.Generator, char_px: float, printed_phone: str, contrast: tuple[float, float] = (0.45, 0.8)
) -> tuple[Image_, Image_]:
    """(BGR poster, alpha) at scene scale: glyph blocks and one phone line, digits `char_px` high.

    `contrast`: range of the ink's contrast against the paper (1 = fresh print).
    """
    h = max(4, round(char_px * SS))  # digit height at 4x
    g = round(h * 1.15)  # glyph cell
    paper = np.array(rng.choice([(235, 240, 245), (200, 235, 250), (225, 215, 250), (245, 245, 235)]), float)
    ink = np.array(rng.choice([(30, 30, 160), (25, 25, 25), (140, 40, 20), (20, 20, 120)]), float)
    ink = paper + (ink - paper) * rng.uniform(*contrast)  # faded by sun and rain
    prefix = str(rng.choice(["", "TEL:", "Tel ", "@"]))
    phone_w = _text_width(prefix + printed_phone, h) + (2 * g + g // 2 if prefix == "@" else 0)
    cols = max(8, int(np.ceil(phone_w / g)) + 1)
    margin = g
    width = cols * g + 2 * margin
    lines: list[tuple[str, int]] = [("title", int(rng.integers(3, 6)))]
    lines += [("body", int(rng.integers(cols // 2, cols + 1))) for _ in range(int(rng.integers(2, 4)))]
    lines.insert(int(rng.integers(2, len(lines) + 1)), ("phone", 0))
    if rng.random() < 0.5:
        lines.append(("body", int(rng.integers(cols // 2, cols + 1))))
    pitch = round(g * 1.7)
    height = max(int(width * 1.2), 2 * margin + round(g * 2.4) + pitch * (len(lines) - 1) + g)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = paper
    y = margin
    ink_t = tuple(int(v) for v in ink)
    for kind, n in lines:
        if kind == "title":
            tg = round(g * 1.6)
            n = min(n, (width - 2 * margin) // tg)
            x0 = (width - n * tg) // 2
            for i in range(n):
                _glyph(canvas, x0 + i * tg, y, tg, ink_t, rng)
            y += round(tg * 1.5)
        elif kind == "phone":
            x = margin
            if prefix == "@":  # "电话：" as two glyphs and a colon
                for i in range(2):
                    _glyph(canvas, x + i * g, y, g, ink_t, rng)
                x += 2 * g
                cv2.circle(canvas, (x + g // 4, y + g // 3), max(1, g // 14), ink_t, -1, cv2.LINE_AA)
                cv2.circle(canvas, (x + g // 4, y + 2 * g // 3), max(1, g // 14), ink_t, -1, cv2.LINE_AA)
                x += g // 2
                _text(canvas, x, y + (g - h) // 2, printed_phone, h, ink_t)
            else:
                _text(canvas, x, y + (g - h) // 2, prefix + printed_phone, h, ink_t)
            y += pitch
        else:
            for i in range(n):
                _glyph(canvas, margin + i * g, y, g, ink_t, rng)
            y += pitch
    sw, sh = max(1, round(width / SS)), max(1, round(height / SS))
    small = cv2.resize(canvas, (sw, sh), interpolation=cv2.INTER_AREA)
    return small, np.full((sh, sw), 255, np.uint8)


def _paste(scene: NDArray[np.float32], img: Image_, alpha: Image_, x: int, y: int, rng: np.random.Generator,
           tilt_deg: float = 3.0, persp: float = 0.03) -> tuple[int, int, int, int]:  # fmt: skip
    """Warps `img` (rotation + perspective) onto `scene` with its top-left near (x, y); returns the box."""
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    a = np.deg2rad(rng.uniform(-tilt_deg, tilt_deg))
    c, s = np.cos(a), np.sin(a)
    ctr = np.float32([w / 2, h / 2])
    dst = (src - ctr) @ np.float32([[c, s], [-s, c]]) + ctr
    dst += rng.uniform(-persp, persp, (4, 2)).astype(np.float32) * np.float32([w, h])
    dst += np.float32([x, y])
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(img, m, (W, H), flags=cv2.INTER_LINEAR)
    a_w = cv2.warpPerspective(alpha, m, (W, H), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255
    scene *= 1 - a_w
    scene += a_w * warped.astype(np.float32)
    x0, y0 = np.floor(dst.min(axis=0)).astype(int)
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


@lru_cache(maxsize=4)
def _base(seed: int) -> NDArray[np.float32]:
    """The empty street: façade and wall, pole, sign, bus-stop board, road (float BGR)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((H, W, 3), np.float32)
    img[:] = (150, 160, 170)  # façade
    img[: int(0.12 * H)] = (200, 180, 160)  # sky
    x0, y0 = int(WALL[0][0] * W), int(WALL[0][1] * H)
    x1, y1 = int(WALL[2][0] * W), int(WALL[2][1] * H)
    img[y0:y1, x0:x1] = (165, 175, 182)  # the wall: concrete
    for yy in range(y0, y1, 60):  # panel joints
        img[yy : yy + 2, x0:x1] -= 22
    for xx in range(x0, x1, 150):
        img[y0:y1, xx : xx + 2] -= 22
    img[int(0.76 * H) :] = (95, 98, 100)  # road
    img[int(0.74 * H) : int(0.76 * H)] = (170, 170, 170)  # kerb
    for scale, amp in ((60, 10.0), (12, 6.0), (3, 5.0)):  # stains, grain
        small = rng.normal(0, amp, (H // scale + 2, W // scale + 2)).astype(np.float32)
        img += cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC)[:, :, None]
    px0, px1 = int(POLE[0][0] * W) + 10, int(POLE[1][0] * W) - 10
    img[int(0.20 * H) : int(0.90 * H), px0:px1] = (120, 125, 128)  # the pole
    img[int(0.20 * H) : int(0.90 * H), px0 : px0 + 4] -= 20
    # the shop sign: red board, white letters, with a phone number: permanent text
    sx0, sy0, sx1, sy1 = SIGN
    img[sy0:sy1, sx0:sx1] = (40, 40, 170)
    sign = np.zeros((sy1 - sy0, sx1 - sx0, 3), np.uint8)
    sign[:] = (40, 40, 170)
    _text(sign, 24, 20, "XINGFU MARKET 24H  TEL 010-62345678", 22, (235, 235, 235))
    img[sy0:sy1, sx0:sx1] = sign
    # bus-stop board off the wall zones, with an ad and its phone number
    bx0, by0, bx1, by1 = BOARD
    img[by0:by1, bx0:bx1] = (60, 60, 60)
    img[by0 + 10 : by1 - 10, bx0 + 10 : bx1 - 10] = (235, 235, 235)
    board = np.ascontiguousarray(img[by0:by1, bx0:bx1].astype(np.uint8))
    _text(board, 40, 60, "SALE 50%", 40, (30, 30, 200))
    _text(board, 40, 160, "13911112222", 26, (20, 20, 20))
    img[by0:by1, bx0:bx1] = board
    return img


def scene(
    seed: int = 0,
    posters: list[tuple[Image_, Image_, int, int]] | None = None,
    rng: np.random.Generator | None = None,
    jpeg_quality: int = 80,
    gain: float = 1.0,
) -> Image_:
    """A 1920x1080 BGR frame: the street of `seed` with `posters` (img, alpha, x, y) pasted on it."""
    rng = rng or np.random.default_rng(seed + 1000)
    img = _base(seed).copy()
    for p, a, x, y in posters or []:
        _paste(img, p, a, x, y, rng)
    img *= gain
    img = cv2.GaussianBlur(img, (0, 0), 0.6)  # optics
    img += rng.normal(0, 3.0, (H, W, 1)).astype(np.float32)  # sensor noise
    u8 = np.clip(img, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _shelf(
    x: int, y: int, shelf: int, w: int, h: int, rng: np.random.Generator
) -> tuple[int, int, int, int, int] | None:
    """Places a w x h poster on the wall's shelves after (x, y); returns (px, py, x, y, shelf) or None."""
    x0 = int(WALL[0][0] * W) + 20
    x1, y1 = int(WALL[2][0] * W) - 20, int(WALL[2][1] * H) - 20
    if x + w > x1:
        x, y, shelf = x0, y + shelf + 25, 0
    if x + w > x1 or y + h > y1:
        return None
    dy = int(rng.integers(0, max(1, min(40, y1 - y - h))))
    return x, y + dy, x + w + int(rng.integers(25, 60)), y, max(shelf, h + dy)


def poster_scenes(
    seed: int, char_px: list[float], jpeg_quality: int = 80, contrast: tuple[float, float] = (0.45, 0.8)
) -> list[tuple[Image_, list[Placed]]]:
    """Frames with one poster per entry of `char_px`, as many per frame as fit on the wall."""
    rng = np.random.default_rng(seed)
    out: list[tuple[Image_, list[Placed]]] = []
    items: list[tuple[Image_, Image_, int, int]] = []
    placed: list[Placed] = []
    start = (int(WALL[0][0] * W) + 20, SIGN[3] + 30, 0)

    def flush() -> None:
        if items:
            frame = scene(0, items, rng=np.random.default_rng(seed * 31 + len(out)), jpeg_quality=jpeg_quality)
            out.append((frame, list(placed)))
        items.clear()
        placed.clear()

    x, y, shelf = start
    for cp in char_px:
        printed, norm = random_phone(rng)
        img, alpha = render_poster(rng, cp, printed, contrast)
        spot = _shelf(x, y, shelf, img.shape[1], img.shape[0], rng)
        if spot is None:
            flush()
            x, y, shelf = start
            spot = _shelf(x, y, shelf, img.shape[1], img.shape[0], rng)
            if spot is None:
                raise ValueError("poster larger than the wall")
        px, py, x, y, shelf = spot
        items.append((img, alpha, px, py))
        placed.append(Placed(norm, (px, py, px + img.shape[1], py + img.shape[0]), cp))
    flush()
    return out


def poster_scene(seed: int, char_px: list[float], jpeg_quality: int = 80) -> tuple[Image_, list[Placed]]:
    """One frame with one poster per entry of `char_px` (they must fit on the wall)."""
    frames = poster_scenes(seed, char_px, jpeg_quality)
    if len(frames) != 1:
        raise ValueError("posters do not fit on one wall")
    return frames[0]


def board_poster_scene(seed: int, char_px: float = 14) -> tuple[Image_, Placed]:
    """The empty street plus one poster on the road-side, outside every wall/pole zone."""
    rng = np.random.default_rng(seed)
    printed, norm = random_phone(rng)
    img, alpha = render_poster(rng, char_px, printed)
    x, y = 1100, int(0.78 * H)
    frame = scene(0, [(img, alpha, x, y)], rng=np.random.default_rng(seed + 7))
    return frame, Placed(norm, (x, y, x + img.shape[1], y + img.shape[0]), char_px)

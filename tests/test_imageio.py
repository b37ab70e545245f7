"""engine.imageio: every image is generated here, in tmp_path, by Pillow or by hand (huge PNG headers)."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from engine import imageio
from engine.errors import ImageLoadError
from engine.imageio import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    list_images,
    load_image,
    load_image_bytes,
    read_image_size,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _save(img: Image.Image, path: Path, fmt: str | None = None, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kwargs)
    return path


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _marked(width: int = 40, height: int = 24) -> Image.Image:
    """Grey image with a red block at the stored top-left and a green block at the stored top-right."""
    pixels = np.full((height, width, 3), 128, np.uint8)
    pixels[:6, :6] = RED
    pixels[:6, -6:] = GREEN
    return Image.fromarray(pixels)


def _corner_colors(rgb: np.ndarray) -> dict[str, tuple[int, ...]]:
    """Mean colour of the 4x4 patch inside each corner (robust to JPEG ringing at block edges)."""
    patches = {
        "top-left": rgb[1:5, 1:5],
        "top-right": rgb[1:5, -5:-1],
        "bottom-left": rgb[-5:-1, 1:5],
        "bottom-right": rgb[-5:-1, -5:-1],
    }
    return {k: tuple(int(round(v)) for v in p.reshape(-1, 3).mean(0)) for k, p in patches.items()}


def _close(color: tuple[int, ...], expected: tuple[int, int, int], tol: int) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(color, expected, strict=True))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_bilevel_png(path: Path, width: int, height: int, block_rows: int = 1000) -> Path:
    """A valid all-black 1-bit PNG of any size, written in milliseconds.

    One block of rows is deflated once and ended with a full flush (byte-aligned, no references to earlier
    data), so the same compressed bytes can be repeated for every block; only the Adler-32 is per stream.
    """
    assert height % block_rows == 0
    raw_block = bytes((1 + (width + 7) // 8) * block_rows)  # filter byte 0 + zero bits per row
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflater.compress(raw_block) + deflater.flush(zlib.Z_FULL_FLUSH)
    repeats = height // block_rows
    adler = 1
    for _ in range(repeats):
        adler = zlib.adler32(raw_block, adler)
    final_block = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # empty final block
    stream = b"\x78\xda" + block * repeats + final_block + struct.pack(">I", adler)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", stream)
    path.write_bytes(png + _png_chunk(b"IEND", b""))
    return path


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Records every pixel decode (ImageFile.load) with the image size."""
    calls: list[tuple[int, int]] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return calls


def _assert_rgb(loaded: imageio.LoadedImage, height: int, width: int) -> None:
    rgb = loaded.rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (height, width, 3)
    assert rgb.flags.c_contiguous and rgb.flags.writeable


# ----------------------------------------------------------------------------------------------------------
# Listing


def test_list_images_natural_order_hidden_and_recursion(tmp_path: Path) -> None:
    for name in ["a10.png", "a2.JPG", "A1.jpeg", "b.TIFF", "c.webp", "d.bmp", "e.tif", "f.Png", "g.gif"]:
        (tmp_path / name).write_bytes(b"x")  # listing goes by name only
    for name in [".hidden.png", "._a3.jpg", "notes.txt", "h.eps", "noext"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()  # a folder with an image suffix is not a file
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x2.png").write_bytes(b"x")
    (tmp_path / "sub" / "x10.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "y.png").write_bytes(b"x")

    flat = list_images(tmp_path)
    names = ["A1.jpeg", "a2.JPG", "a10.png", "b.TIFF", "c.webp", "d.bmp", "e.tif", "f.Png", "g.gif"]
    assert [p.name for p in flat] == names
    assert all(p.parent == tmp_path for p in flat)

    deep = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path, recursive=True)]
    assert deep[:9] == [p.name for p in flat]
    assert deep[9:] == ["sub/x2.png", "sub/x10.png"]
    assert {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"} <= IMAGE_EXTENSIONS
    assert not {".eps", ".txt", ".pdf", ".svg"} & IMAGE_EXTENSIONS


def test_list_images_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="does not exist"):
        list_images(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ImageLoadError, match="not a folder"):
        list_images(tmp_path / "file.png")
    (tmp_path / "sub").mkdir()
    assert list_images(tmp_path / "sub") == []


# ----------------------------------------------------------------------------------------------------------
# Formats and pixel modes


@pytest.mark.parametrize(
    ("fmt", "suffix", "kwargs", "tol"),
    [
        ("PNG", ".png", {}, 0),
        ("BMP", ".bmp", {}, 0),
        ("TIFF", ".tif", {}, 0),
        ("TIFF", ".tiff", {"compression": "tiff_lzw"}, 0),
        ("WEBP", ".webp", {"lossless": True}, 0),
        ("JPEG", ".jpg", {"quality": 95, "subsampling": 0}, 12),
    ],
)
def test_common_formats_round_trip(tmp_path: Path, fmt: str, suffix: str, kwargs: dict, tol: int) -> None:
    rng = np.random.default_rng(0)
    pixels = np.kron(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8))  # 48 x 64
    path = _save(Image.fromarray(pixels), tmp_path / f"img{suffix}", fmt, **kwargs)

    loaded = load_image(path)

    _assert_rgb(loaded, 48, 64)
    assert loaded.format == fmt and loaded.original_mode == "RGB"
    assert loaded.original_size == (64, 48) and loaded.bit_depth == 8 and loaded.n_frames == 1
    assert loaded.path == path and not loaded.exif_transposed
    assert np.abs(loaded.rgb.astype(int) - pixels).max() <= tol
    assert read_image_size(path) == (64, 48)


@pytest.mark.parametrize(
    ("orientation", "shape", "red_at", "green_at"),
    [
        (3, (24, 40), "bottom-right", "bottom-left"),  # rotate 180
        (6, (40, 24), "top-right", "bottom-right"),  # stored top row becomes the right column
        (8, (40, 24), "bottom-left", "top-left"),  # stored top row becomes the left column
    ],
)
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied(
    tmp_path: Path, fmt: str, orientation: int, shape: tuple[int, int], red_at: str, green_at: str
) -> None:
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    path = _save(_marked(), tmp_path / f"o{orientation}.{fmt.lower()}", fmt, exif=_exif(orientation), **kwargs)

    loaded = load_image(path)

    assert loaded.rgb.shape == (*shape, 3) and loaded.rgb.flags.c_contiguous
    assert loaded.exif_transposed and loaded.original_size == (40, 24)
    corners = _corner_colors(loaded.rgb)
    assert _close(corners[red_at], RED, 40), corners
    assert _close(corners[green_at], GREEN, 40), corners
    others = set(corners) - {red_at, green_at}
    assert all(_close(corners[k], (128, 128, 128), 40) for k in others), corners
    assert read_image_size(path) == (shape[1], shape[0])


def test_all_orientations_match_pillow_exif_transpose(tmp_path: Path) -> None:
    for orientation in range(1, 9):
        path = _save(_marked(13, 7), tmp_path / f"o{orientation}.png", exif=_exif(orientation))
        with Image.open(path) as img:
            expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
        loaded = load_image(path)
        assert np.array_equal(loaded.rgb, expected), orientation
        assert loaded.exif_transposed == (orientation != 1)


def test_tiff_orientation_tag(tmp_path: Path) -> None:
    path = _save(_marked(), tmp_path / "o6.tif", tiffinfo={274: 6})
    loaded = load_image(path)
    assert loaded.rgb.shape == (40, 24, 3) and loaded.exif_transposed and loaded.original_size == (40, 24)
    corners = _corner_colors(loaded.rgb)
    assert _close(corners["top-right"], RED, 0) and _close(corners["bottom-right"], GREEN, 0)
    assert read_image_size(path) == (24, 40)


def test_grayscale_and_bilevel(tmp_path: Path) -> None:
    gray = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    loaded = load_image(_save(Image.fromarray(gray), tmp_path / "gray.png"))
    assert loaded.original_mode == "L"
    assert all(np.array_equal(loaded.rgb[..., c], gray) for c in range(3))

    bits = np.zeros((10, 12), bool)
    bits[2:5, 3:9] = True
    for fmt in ["PNG", "BMP", "TIFF"]:
        path = _save(Image.fromarray(bits), tmp_path / f"bits.{fmt.lower()}", fmt)
        loaded = load_image(path)
        assert loaded.original_mode == "1" and loaded.bit_depth == 1, fmt
        assert np.array_equal(loaded.rgb, np.repeat(bits[..., None] * np.uint8(255), 3, axis=2)), fmt


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0] = (200, 100, 50, 255)  # opaque: colour kept
    rgba[1] = (200, 100, 50, 0)  # transparent: white
    rgba[2] = (200, 100, 50, 128)  # half: c*a/255 + 255*(1-a/255)
    rgba[3] = (0, 0, 0, 64)
    expected = np.round(rgba[..., :3] * (rgba[..., 3:] / 255.0) + 255.0 * (1 - rgba[..., 3:] / 255.0)).astype(np.uint8)
    for fmt, suffix, kwargs in [("PNG", ".png", {}), ("WEBP", ".webp", {"lossless": True, "exact": True})]:
        loaded = load_image(_save(Image.fromarray(rgba), tmp_path / f"rgba{suffix}", fmt, **kwargs))
        assert loaded.original_mode == "RGBA"
        assert np.array_equal(loaded.rgb, expected), fmt

    la = Image.fromarray(np.array([[[10, 255], [10, 0], [10, 51]]], np.uint8), "LA")
    loaded = load_image(_save(la, tmp_path / "la.png"))
    assert loaded.original_mode == "LA"
    assert loaded.rgb[0, :, 0].tolist() == [10, 255, round(10 * 0.2 + 255 * 0.8)]
    assert np.array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = [*RED, *GREEN, *BLUE]
    plain = Image.fromarray(indices, "P")
    plain.putpalette(palette)
    loaded = load_image(_save(plain, tmp_path / "plain.png"))
    assert loaded.original_mode == "P"
    assert loaded.rgb[0].tolist() == [list(RED), list(GREEN), list(BLUE)]

    loaded = load_image(_save(plain, tmp_path / "trns.png", transparency=0))
    assert loaded.rgb[0].tolist() == [[255, 255, 255], list(GREEN), list(BLUE)]
    assert loaded.rgb[1, 2].tolist() == [255, 255, 255]

    gif = load_image(_save(plain, tmp_path / "p.gif", transparency=1))
    assert gif.format == "GIF" and gif.rgb[0].tolist() == [list(RED), [255, 255, 255], list(BLUE)]


def test_grey_and_rgb_transparency_colour(tmp_path: Path) -> None:
    gray = Image.fromarray(np.array([[7, 8]], np.uint8))
    assert load_image(_save(gray, tmp_path / "g.png", transparency=7)).rgb[0].tolist() == [[255] * 3, [8] * 3]
    rgb = Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
    loaded = load_image(_save(rgb, tmp_path / "c.png", transparency=(1, 2, 3)))
    assert loaded.rgb[0].tolist() == [[255] * 3, [4, 5, 6]]


def test_16bit_png_maps_the_full_range(tmp_path: Path) -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # every 16-bit value once
    path = _save(Image.fromarray(values), tmp_path / "deep.png")

    loaded = load_image(path)

    assert loaded.original_mode == "I;16" and loaded.bit_depth == 16
    expected = np.round(values.astype(np.float64) * 255.0 / 65535.0).astype(np.uint8)
    assert np.array_equal(loaded.rgb[..., 0], expected)
    assert np.array_equal(loaded.rgb[..., 1], expected) and np.array_equal(loaded.rgb[..., 2], expected)
    assert loaded.rgb[255, 255, 0] == 255 and loaded.rgb[0, 0, 0] == 0 and loaded.rgb[128, 128, 0] == 128


def test_16bit_rgb_png_and_tiff(tmp_path: Path) -> None:
    bgr = np.array([[[0, 257, 65535], [32896, 1000, 65280]]], np.uint16)
    for name in ["rgb16.png", "rgb16.tif"]:
        assert cv2.imwrite(str(tmp_path / name), bgr)
        loaded = load_image(tmp_path / name)
        assert loaded.bit_depth == 16
        # Pillow's decoder keeps the high byte of 16-bit colour samples (documented in engine.imageio).
        assert loaded.rgb.tolist() == [[[255, 1, 0], [255, 3, 128]]], name


def test_broken_exif_does_not_block_loading(tmp_path: Path) -> None:
    broken = b"Exif\x00\x00II*\x00\xff\xff\x00\x00"  # first IFD points far past the end of the block
    path = _save(Image.new("RGB", (6, 4), RED), tmp_path / "exif.jpg", exif=broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_image(path)
    assert loaded.rgb.shape == (4, 6, 3) and not loaded.exif_transposed
    assert _close(tuple(loaded.rgb[2, 3]), RED, 8) and caught == []
    assert read_image_size(path) == (6, 4)


@pytest.mark.parametrize("dtype", ["<u2", ">u2"])
def test_16bit_tiff_both_byte_orders(tmp_path: Path, dtype: str) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=dtype)
    loaded = load_image(_save(Image.fromarray(values), tmp_path / "deep.tif"))
    assert loaded.original_mode in ("I;16", "I;16B") and loaded.bit_depth == 16
    assert loaded.rgb[0, :, 0].tolist() == [0, 1, 128, 255]


def test_float_and_int32_tiff(tmp_path: Path) -> None:
    unit = np.array([[0.0, 0.5, 1.0, np.nan]], np.float32)
    loaded = load_image(_save(Image.fromarray(unit, "F"), tmp_path / "unit.tif"))
    assert loaded.original_mode == "F" and loaded.bit_depth == 32
    assert loaded.rgb[0, :, 0].tolist() == [0, 128, 255, 0]

    wide = np.array([[-10.0, 0.0, 30.0]], np.float32)  # outside [0, 1]: stretched min..max
    assert load_image(_save(Image.fromarray(wide, "F"), tmp_path / "wide.tif")).rgb[0, :, 0].tolist() == [
        0,
        64,
        255,
    ]

    ints = np.array([[100_000, 150_000, 300_000]], np.int32)
    loaded = load_image(_save(Image.fromarray(ints, "I"), tmp_path / "int.tif"))
    assert loaded.original_mode == "I" and loaded.rgb[0, :, 0].tolist() == [0, 64, 255]


def test_cmyk_jpeg_and_tiff(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (32, 16), (0, 255, 255, 0))  # red
    cmyk.paste((255, 255, 0, 0), (16, 0, 32, 16))  # blue
    jpeg = _save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    with Image.open(jpeg) as raw:
        assert "adobe" in raw.info  # Adobe-marked (inverted) CMYK as cameras/Photoshop write it
    for path, tol in [(jpeg, 8), (_save(cmyk, tmp_path / "cmyk.tif"), 0)]:
        loaded = load_image(path)
        assert loaded.original_mode == "CMYK"
        assert _close(tuple(loaded.rgb[8, 4]), RED, tol) and _close(tuple(loaded.rgb[8, 28]), BLUE, tol)


def test_ycbcr_and_lab_tiff(tmp_path: Path) -> None:
    ycbcr = Image.new("RGB", (4, 4), (200, 30, 90)).convert("YCbCr")
    loaded = load_image(_save(ycbcr, tmp_path / "ycc.tif"))
    assert loaded.original_mode == "YCbCr" and _close(tuple(loaded.rgb[0, 0]), (200, 30, 90), 3)

    lab = Image.new("LAB", (2, 1), (255, 128, 128))  # L=100, a=b=0: white
    lab.putpixel((1, 0), (round(53.24 * 2.55), 128 + 80, 128 + 67))  # sRGB red in CIELab
    loaded = load_image(_save(lab, tmp_path / "lab.tif"))
    assert loaded.original_mode == "LAB"
    assert _close(tuple(loaded.rgb[0, 0]), (255, 255, 255), 3)
    assert _close(tuple(loaded.rgb[0, 1]), RED, 15)


def test_multi_frame_tiff_gives_first_page(tmp_path: Path) -> None:
    pages = [Image.new("RGB", (8, 6), c) for c in (GREEN, RED, BLUE)]
    path = tmp_path / "pages.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    loaded = load_image(path)
    assert loaded.n_frames == 3 and np.all(loaded.rgb == GREEN)


def test_conversion_in_bands_matches_whole_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    deep = _save(Image.fromarray(rng.integers(0, 65536, (37, 23), dtype=np.uint16)), tmp_path / "d.png")
    cmyk = _save(Image.fromarray(rng.integers(0, 256, (37, 23, 4), dtype=np.uint8), "CMYK"), tmp_path / "c.tif")
    rgba = _save(Image.fromarray(rng.integers(0, 256, (37, 23, 4), dtype=np.uint8)), tmp_path / "a.png")
    wide = _save(Image.fromarray(rng.normal(0, 50, (37, 23)).astype(np.float32), "F"), tmp_path / "f.tif")
    paths = [deep, cmyk, rgba, wide]
    whole = [load_image(p).rgb for p in paths]
    monkeypatch.setattr(imageio, "_BAND_PIXELS", 50)  # 2 rows per band
    assert all(np.array_equal(load_image(p).rgb, w) for p, w in zip(paths, whole, strict=True))


def test_unicode_path_and_bytes(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (5, 3), BLUE), tmp_path / "bilder" / "äöü 画像.png")
    loaded = load_image(path)
    assert loaded.path == path and np.all(loaded.rgb == BLUE)
    assert list_images(path.parent) == [path]

    from_bytes = load_image_bytes(path.read_bytes(), "upload.png")
    assert from_bytes.path == Path("upload.png") and np.array_equal(from_bytes.rgb, loaded.rgb)
    with pytest.raises(ImageLoadError, match=r"'upload\.png'.*empty"):
        load_image_bytes(b"", "upload.png")


# ----------------------------------------------------------------------------------------------------------
# Bad files


def _load_error(path: Path) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message and message.startswith("Cannot read image")
    return message


def test_missing_directory_empty_and_text(tmp_path: Path) -> None:
    assert "does not exist" in _load_error(tmp_path / "missing.jpg")
    (tmp_path / "dir.png").mkdir()
    assert "folder" in _load_error(tmp_path / "dir.png")
    (tmp_path / "empty.png").write_bytes(b"")
    assert "empty (0 bytes)" in _load_error(tmp_path / "empty.png")
    (tmp_path / "notes.jpg").write_text("hello, this is not a picture\n")
    assert "not an image" in _load_error(tmp_path / "notes.jpg")
    with pytest.raises(ImageLoadError, match="does not exist"):
        read_image_size(tmp_path / "missing.jpg")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("RGB", (4, 4)), tmp_path / "locked.png")
    path.chmod(0)
    original_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:  # root ignores file modes, so refuse explicitly as the OS would
            raise PermissionError(13, "Permission denied", str(self))
        return original_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert "permission denied" in _load_error(path)


def _encoded(fmt: str, **kwargs: object) -> bytes:
    rng = np.random.default_rng(2)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "WEBP"])
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    data = _encoded(fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _load_error(path)


def test_corrupt_header_and_data(tmp_path: Path) -> None:
    png = _encoded("PNG")
    bad_header = tmp_path / "header.png"
    bad_header.write_bytes(png[:16] + b"\xff" * 8 + png[24:])  # IHDR fields overwritten, CRC now wrong
    assert "starts like a PNG file" in _load_error(bad_header)

    idat = png.index(b"IDAT") + 4
    payload = bytearray(png)
    payload[idat + 2 : idat + 200] = bytes(198)  # zlib stream destroyed
    bad_data = tmp_path / "data.png"
    bad_data.write_bytes(bytes(payload))
    message = _load_error(bad_data)
    assert "corrupt" in message or "truncated" in message

    eps = tmp_path / "vector.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert "not in a supported format" in _load_error(eps)  # EPS would start Ghostscript: never opened


def test_unsupported_mode_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _save(Image.new("LAB", (4, 4)), tmp_path / "lab.tif")
    monkeypatch.delitem(imageio._CONVERTERS, "LAB")
    assert "pixel format 'LAB' is not supported" in _load_error(path)


# ----------------------------------------------------------------------------------------------------------
# Size limits


def test_bilevel_png_helper_writes_valid_files(tmp_path: Path) -> None:
    loaded = load_image(_write_bilevel_png(tmp_path / "small.png", 70, 48, block_rows=8))
    assert loaded.rgb.shape == (48, 70, 3) and not loaded.rgb.any() and loaded.bit_depth == 1


def test_max_pixels_refuses_before_decoding(tmp_path: Path, decode_calls: list) -> None:
    path = _save(Image.new("RGB", (50, 40)), tmp_path / "big.png")
    with pytest.raises(ImageLoadError, match=r"big\.png.*too large \(50 x 40 pixels"):
        load_image(path, max_pixels=1999)
    assert decode_calls == []
    assert load_image(path, max_pixels=2000).rgb.shape == (40, 50, 3)


def test_huge_header_above_our_limit_fails_fast(tmp_path: Path, decode_calls: list) -> None:
    path = _write_bilevel_png(tmp_path / "huge.png", 11000, 10000)  # 110 MP, ~100 kB on disk
    assert path.stat().st_size < 500_000
    start = time.perf_counter()
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert time.perf_counter() - start < 2.0 and decode_calls == []
    message = str(info.value)
    assert str(path) in message and "11000 x 10000 pixels" in message and "100.0 megapixels" in message
    assert read_image_size(path) == (11000, 10000)  # the header is still readable for the file list


def test_huge_header_above_pillow_limit_fails_fast(tmp_path: Path, decode_calls: list) -> None:
    path = _write_bilevel_png(tmp_path / "bomb.png", 30000, 30000)  # 900 MP, a decompression bomb
    for limit in (DEFAULT_MAX_PIXELS, None):
        start = time.perf_counter()
        with pytest.raises(ImageLoadError) as info:
            load_image(path, max_pixels=limit)
        assert time.perf_counter() - start < 2.0
        assert str(path) in str(info.value) and "too large (900.0 megapixels" in str(info.value)
    assert decode_calls == []


class _ReachedDecode(BaseException):
    """Raised instead of decoding: proves the size gate let the image through without paying for it."""


def test_default_limit_accepts_12000_by_8000_without_pillow_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_bilevel_png(tmp_path / "photo.png", 12000, 8000)  # 96 MP: above Pillow's warning level

    def stop(self: ImageFile.ImageFile) -> object:
        raise _ReachedDecode(self.size)

    monkeypatch.setattr(ImageFile.ImageFile, "load", stop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(_ReachedDecode):
            load_image(path)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pillow_bomb_warning_silenced_and_error_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # warns above 1000 px, refuses above 2000 px
    accepted = _save(Image.new("RGB", (40, 40), RED), tmp_path / "warned.png")
    refused = _save(Image.new("RGB", (50, 50), RED), tmp_path / "refused.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.all(load_image(accepted).rgb == RED)
        with pytest.raises(ImageLoadError, match=r"refused\.png.*too large \(2500 pixels; the limit is 2000 pixels\)"):
            load_image(refused)
    assert caught == []

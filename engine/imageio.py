"""Read image files into RGB uint8 arrays, with one clear error type for every way a file can be bad.

Pixel policy (what ``load_image`` returns for each kind of file):

- EXIF orientation (tags 2-8, also TIFF/PNG/WebP EXIF) is applied, so the array is upright as a viewer
  shows it; ``original_size`` keeps the size as stored.
- Transparency (RGBA, LA, PA, premultiplied RGBa/La, palette or grey/RGB images with a ``tRNS`` colour) is
  composited onto white, the way a document viewer shows it, instead of exposing whatever colour happens to
  be stored under fully transparent pixels.
- Grey, 1-bit and palette images are expanded to three equal (or palette) channels; CMYK (including Adobe's
  inverted CMYK JPEGs, which Pillow decodes), YCbCr and HSV use Pillow's conversion (no ICC colour
  management); CIELab uses a LittleCMS Lab -> sRGB transform.
- 16-bit grey (I;16, I;16L, I;16B, I;16N) maps the full 0..65535 range linearly to 0..255 with rounding
  (v8 = round(v * 255 / 65535), so 65535 -> 255 and 32896 -> 128). 16-bit RGB(A) files are reduced to
  8 bits by Pillow's decoder (high byte).
- 32-bit integer (I) images use their stored bit depth when the values fit it (e.g. 16-bit data), otherwise
  their actual min..max range is stretched to 0..255. 32-bit float (F) images in [0, 1] are scaled by 255,
  other ranges are stretched min..max; NaN and infinities become 0. A constant image becomes black.
- Multi-frame files (TIFF pages, animated GIF/WebP, MPO) give their first frame; ``n_frames`` says how many.

Size policy: the header is read first (Pillow opens lazily) and images with more than ``max_pixels`` pixels
are refused before any pixel is decoded. Pillow's own decompression-bomb guard stays active as a second
line (it refuses anything above 2 * ``PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP, during opening); its
warning is silenced for images we accept. Conversion runs in bands of rows so that peak memory stays near
the decoded image plus the output array.

Only mainstream raster formats are opened (``_FORMATS``): exotic Pillow plugins, and EPS in particular
(which would start Ghostscript), are refused as unsupported.

Thread note: the warning filter uses ``warnings.catch_warnings``, which in Python < 3.14 is process-wide;
two threads loading at the same time can at worst leave a filter for Pillow's warnings installed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError

from engine.errors import ImageLoadError

# 100 megapixels: a 12000 x 8000 photo fits; the decoded RGB output is then at most ~300 MB.
DEFAULT_MAX_PIXELS = 100_000_000

# Pillow format names we open; MPO (multi-picture camera JPEG) is handled by the JPEG entry.
_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "TIFF", "WEBP", "GIF", "PPM", "AVIF", "JPEG2000")
# Named in messages and in file dialogs.
SUPPORTED_FORMATS_TEXT = "JPEG, PNG, BMP, TIFF, WebP, GIF, PPM/PGM, AVIF, JPEG 2000"


def _suffixes_of_opened_formats() -> frozenset[str]:
    """Every file suffix Pillow registers for a format the loader opens (and this Pillow has)."""
    Image.init()
    return frozenset(ext.lower() for ext, name in Image.EXTENSION.items() if name in _FORMATS and name in Image.OPEN)


# File suffixes that list_images picks up (compared case-insensitively, with the leading dot): exactly the
# formats load_image opens, so a folder shows every file the loader can read and no file it refuses by format.
IMAGE_EXTENSIONS: frozenset[str] = _suffixes_of_opened_formats()


def image_file_filter() -> str:
    """A file-dialog filter for the images the loader opens ("Images (*.jpg ...);;All files (*)")."""
    return f"Images ({' '.join('*' + ext for ext in sorted(IMAGE_EXTENSIONS))});;All files (*)"


# Rows are converted in bands of about this many pixels to bound temporary memory.
_BAND_PIXELS = 1 << 22

# Magic numbers, used only to word the error for a file whose header Pillow cannot parse.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_ORIENTATIONS = (2, 3, 4, 5, 6, 7, 8)

_MODE_BITS = {"1": 1, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


@dataclass
class LoadedImage:
    """An image as RGB pixels plus what the file said about itself."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, upright (EXIF orientation applied)
    path: Path
    format: str  # Pillow's format name, e.g. "JPEG", "PNG", "TIFF", "MPO"
    original_mode: str  # Pillow mode as stored, e.g. "RGB", "I;16", "CMYK", "P"
    original_size: tuple[int, int]  # (width, height) as stored, before orientation
    exif_transposed: bool  # True when an EXIF orientation other than 1 was applied
    bit_depth: int  # bits per sample as stored (palette images: bits per index)
    n_frames: int = 1  # pages/frames in the file; rgb is the first

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


# ----------------------------------------------------------------------------------------------------------
# Listing


def _natural_key(name: str) -> list[str | int]:
    # re.split with a capture group alternates text and digit runs, so positions always compare like with like.
    parts: list[str | int] = []
    for i, token in enumerate(re.split(r"(\d+)", name)):
        parts.append(int(token) if i % 2 else token.casefold())
    return parts


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name != "nt":  # only Windows has a hidden attribute
        return False
    try:
        return bool(getattr(entry.stat(), "st_file_attributes", 0) & stat.FILE_ATTRIBUTE_HIDDEN)
    except OSError:
        return False


def _scan(folder: Path, relative: tuple[str, ...], recursive: bool, found: list[tuple[str, ...]]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if _is_hidden(entry):
                continue
            try:
                if entry.is_file():
                    if os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                        found.append((*relative, entry.name))
                elif recursive and entry.is_dir(follow_symlinks=False):
                    try:
                        _scan(Path(entry.path), (*relative, entry.name), True, found)
                    except OSError:
                        continue  # an unreadable subfolder holds nothing we could load anyway
            except OSError:
                continue  # entry vanished or is unreadable while listing


def list_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Image files in ``folder`` (by suffix, see IMAGE_EXTENSIONS), hidden files and folders skipped.

    Sorted naturally ("img2" before "img10", case-insensitive). Subfolders are searched when ``recursive``;
    symlinked folders are not followed (no cycles), symlinked files are listed.
    """
    folder = Path(folder)
    if not folder.exists():
        raise ImageLoadError(f"Cannot list images in '{folder}': the folder does not exist.")
    if not folder.is_dir():
        raise ImageLoadError(f"Cannot list images in '{folder}': it is a file, not a folder.")
    found: list[tuple[str, ...]] = []
    try:
        _scan(folder, (), recursive, found)
    except OSError as exc:
        raise ImageLoadError(f"Cannot list images in '{folder}': {_os_cause(exc)}.") from exc
    found.sort(key=lambda parts: ([_natural_key(p) for p in parts], parts))
    return [folder.joinpath(*parts) for parts in found]


# ----------------------------------------------------------------------------------------------------------
# Errors


def _fail(path: Path, cause: str) -> ImageLoadError:
    return ImageLoadError(f"Cannot read image '{path}': {cause}")


def _os_cause(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder, not a file"
    if isinstance(exc, PermissionError):
        return "permission denied (the file is not readable by this user)"
    return exc.strerror or str(exc)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels" if pixels >= 1_000_000 else f"{pixels} pixels"


def _too_large(path: Path, size: tuple[int, int], limit: int) -> ImageLoadError:
    w, h = size
    return _fail(
        path,
        f"the image is too large ({w} x {h} pixels = {_megapixels(w * h)}; the limit is {_megapixels(limit)}).",
    )


def _pillow_limit() -> int | None:
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _bomb_error(path: Path, exc: Exception, max_pixels: int | None) -> ImageLoadError:
    # Pillow refuses during open, before we could read the size; its message carries the pixel count.
    limits = [x for x in (max_pixels, _pillow_limit()) if x is not None]
    details = [f"the limit is {_megapixels(min(limits))}"] if limits else []
    match = re.search(r"\((\d+) pixels\)", str(exc))
    if match:
        details.insert(0, _megapixels(int(match.group(1))))
    return _fail(path, f"the image is too large ({'; '.join(details)}).")


def _header_cause(head: bytes, data_size: int) -> str:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        declared = int.from_bytes(head[4:8], "little") + 8
        if data_size < declared:
            return "the file is truncated (image data ends early)."
        return "the WebP data is corrupt."
    for magic, name in _SIGNATURES:
        if head.startswith(magic):
            return f"the file starts like a {name} file but its header is corrupt or the file is truncated."
    return f"it is not an image file, or not in a supported format ({SUPPORTED_FORMATS_TEXT})."


def _decode_cause(exc: Exception) -> str:
    text = str(exc)
    lowered = text.lower()
    if "truncated" in lowered:
        return "the file is truncated (image data ends early)."
    if "decoder" in lowered and "not available" in lowered:
        return f"it uses a compression this Pillow build cannot decode ({text})."
    return f"the image data is corrupt ({type(exc).__name__}: {text})."


# ----------------------------------------------------------------------------------------------------------
# Pixel conversion (one converter per Pillow mode; each returns (rows, W, 3) or (rows, W) uint8)

_Converter = Callable[[Image.Image, tuple[float, float]], np.ndarray]


# round(v * 255 / 65535) == round(v / 257) == (v + 128) // 257 exactly (v / 257 never ends in .5);
# a 64 kB lookup table is several times faster than the integer division on large images.
_GRAY16_TO_8 = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)


def _gray16(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    return np.take(_GRAY16_TO_8, np.asarray(band))  # numpy reads little-, big- and native-endian alike


def _stretch(values: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    lo, hi = value_range
    scaled = np.zeros(values.shape, np.float64)
    finite = np.isfinite(values)
    if hi > lo:
        scaled = np.where(finite, (values.astype(np.float64) - lo) * (255.0 / (hi - lo)), 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _int_or_float(band: Image.Image, value_range: tuple[float, float]) -> np.ndarray:
    return _stretch(np.asarray(band), value_range)


def _composite_white(rgba: np.ndarray) -> np.ndarray:
    color = rgba[..., :-1].astype(np.uint16)
    alpha = rgba[..., -1:].astype(np.uint16)
    return ((color * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _premultiplied_white(rgba: np.ndarray) -> np.ndarray:
    # Premultiplied colour over white: c*a/255 + 255*(1 - a/255) == stored + (255 - a).
    color = rgba[..., :-1].astype(np.uint16)
    alpha = rgba[..., -1:].astype(np.uint16)
    return np.minimum(color + (255 - alpha), 255).astype(np.uint8)


def _with_alpha(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    mode = band.mode
    if mode in ("RGBa", "La"):
        out = _premultiplied_white(np.asarray(band))
    elif mode in ("RGBA", "LA"):
        out = _composite_white(np.asarray(band))
    else:  # P/PA/L/RGB with a transparency entry: let Pillow resolve palette and tRNS first
        out = _composite_white(np.asarray(band.convert("RGBA")))
    return out[..., 0] if out.shape[-1] == 1 else out


def _direct(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    return np.asarray(band)


def _via_rgb(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    return np.asarray(band.convert("RGB"))


def _bilevel(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    return np.asarray(band).astype(np.uint8) * np.uint8(255)  # numpy reads mode "1" as bool


_LAB_TO_SRGB: ImageCms.ImageCmsTransform | None = None


def _lab(band: Image.Image, _: tuple[float, float]) -> np.ndarray:
    global _LAB_TO_SRGB
    if _LAB_TO_SRGB is None:  # built lazily: LittleCMS setup costs a few ms
        _LAB_TO_SRGB = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
    return np.asarray(ImageCms.applyTransform(band, _LAB_TO_SRGB))


_CONVERTERS: dict[str, _Converter] = {
    "1": _bilevel,
    "L": _direct,
    "RGB": _direct,
    "P": _via_rgb,
    "RGBX": _via_rgb,
    "CMYK": _via_rgb,
    "YCbCr": _via_rgb,
    "HSV": _via_rgb,
    "LAB": _lab,
    "LA": _with_alpha,
    "La": _with_alpha,
    "PA": _with_alpha,
    "RGBA": _with_alpha,
    "RGBa": _with_alpha,
    "I;16": _gray16,
    "I;16L": _gray16,
    "I;16B": _gray16,
    "I;16N": _gray16,
    "I": _int_or_float,
    "F": _int_or_float,
}


def _bands(img: Image.Image) -> list[tuple[int, int]]:
    w, h = img.size
    rows = max(1, _BAND_PIXELS // max(w, 1))
    return [(y0, min(h, y0 + rows)) for y0 in range(0, h, rows)]


def _band(img: Image.Image, y0: int, y1: int) -> Image.Image:
    return img if (y0 == 0 and y1 == img.height) else img.crop((0, y0, img.width, y1))


def _value_range(img: Image.Image, bit_depth: int) -> tuple[float, float]:
    """Input range that maps to 0..255 for I and F images (see module docstring)."""
    lo, hi = np.inf, -np.inf
    for y0, y1 in _bands(img):
        values = np.asarray(_band(img, y0, y1))
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if lo > hi:  # no finite value at all
        return 0.0, 0.0
    if img.mode == "F" and lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    if img.mode == "I" and bit_depth < 32 and lo >= 0 and hi <= 2**bit_depth - 1:
        return 0.0, float(2**bit_depth - 1)
    return lo, hi


def _needs_alpha(img: Image.Image) -> bool:
    return img.mode in ("P", "L", "RGB") and "transparency" in img.info


def _to_rgb(img: Image.Image, bit_depth: int) -> np.ndarray:
    converter = _with_alpha if _needs_alpha(img) else _CONVERTERS.get(img.mode)
    if converter is None:
        raise _UnsupportedMode(img.mode)
    value_range = _value_range(img, bit_depth) if img.mode in ("I", "F") else (0.0, 0.0)
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    for y0, y1 in _bands(img):
        pixels = converter(_band(img, y0, y1), value_range)
        if pixels.ndim == 2:  # grey: one plain copy per channel is ~4x faster than a broadcast to (..., 3)
            for channel in range(3):
                out[y0:y1, :, channel] = pixels
        else:
            out[y0:y1] = pixels
    return out


class _UnsupportedMode(Exception):
    def __init__(self, mode: str) -> None:
        super().__init__(mode)
        self.mode = mode


# ----------------------------------------------------------------------------------------------------------
# Metadata


def _orientation(img: Image.Image, decoded: bool) -> int:
    # PNG may keep EXIF after the pixel data; getexif() would then decode, so before decoding only trust
    # what the header gave.
    if img.format == "PNG" and not decoded and "exif" not in img.info:
        return 1
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a broken EXIF block must not make a readable image unreadable
        return 1
    return value if isinstance(value, int) and value in _ORIENTATIONS else 1


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Same transforms as PIL.ImageOps.exif_transpose, done on the array (views, then one copy)."""
    views = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, k=-1),
        7: lambda a: np.rot90(a, k=-1)[::-1],
        8: lambda a: np.rot90(a, k=1),
    }
    view = views.get(orientation)
    return rgb if view is None else np.ascontiguousarray(view(rgb))


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) as stored: newer Pillow reports TIFF sizes already turned by the orientation tag."""
    if img.format == "TIFF":
        tags = getattr(img, "tag_v2", {})
        width, height = tags.get(256), tags.get(257)
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return img.width, img.height


def _bit_depth(img: Image.Image, head: bytes) -> int:
    if img.format == "PNG" and head[12:16] == b"IHDR" and len(head) > 24:
        return int(head[24])
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258)
        if isinstance(bits, tuple) and bits:
            return int(max(bits))
        if isinstance(bits, int):
            return bits
    if img.format in ("JPEG", "MPO"):
        return int(getattr(img, "bits", 8))
    return _MODE_BITS.get(img.mode, 8)


def _frame_count(img: Image.Image) -> int:
    try:
        return max(1, int(getattr(img, "n_frames", 1)))
    except Exception:  # counting frames walks the file; a damaged later frame does not spoil the first
        return 1


# ----------------------------------------------------------------------------------------------------------
# Opening


@contextlib.contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Silence Pillow's warnings inside a load: the size limit and corrupt-data cases are ours to report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")
        yield


def _formats() -> list[str]:
    Image.init()  # registers every plugin once; Image.open would fail on a name this Pillow lacks (e.g. AVIF)
    return [name for name in _FORMATS if name in Image.OPEN]


def _open(fh: IO[bytes], path: Path, head: bytes, data_size: int, max_pixels: int | None) -> Image.Image:
    try:
        img = Image.open(fh, formats=_formats())
    except Image.DecompressionBombError as exc:
        raise _bomb_error(path, exc, max_pixels) from None
    except UnidentifiedImageError:
        raise _fail(path, _header_cause(head, data_size)) from None
    except MemoryError:
        raise _fail(path, "not enough memory to open it.") from None
    except Exception as exc:  # plugins raise OSError/ValueError/EOFError... on broken headers
        cause = _header_cause(head, data_size)
        if cause.startswith("it is not"):
            cause = _decode_cause(exc)
        raise _fail(path, cause) from exc
    if max_pixels is not None and img.width * img.height > max_pixels:
        img.close()
        raise _too_large(path, img.size, max_pixels)
    return img


def _read_head(fh: IO[bytes], path: Path) -> tuple[bytes, int]:
    head = fh.read(32)
    data_size = fh.seek(0, io.SEEK_END)
    fh.seek(0)
    if not head:
        raise _fail(path, "the file is empty (0 bytes).")
    return head, data_size


def _decode(fh: IO[bytes], path: Path, max_pixels: int | None) -> LoadedImage:
    head, data_size = _read_head(fh, path)
    with _quiet_pillow():
        img = _open(fh, path, head, data_size, max_pixels)
        with img:
            stored_size = _stored_size(img)
            header_orientation = _orientation(img, decoded=False)
            try:
                img.load()  # full decode now, so truncation and corruption surface here, not later
                # Newer Pillow turns TIFFs upright while loading and drops the tag: apply what is left.
                orientation = _orientation(img, decoded=True)
                bit_depth = _bit_depth(img, head)
                rgb = _to_rgb(img, bit_depth)
            except _UnsupportedMode as exc:
                raise _fail(path, f"its pixel format '{exc.mode}' is not supported.") from None
            except MemoryError:
                w, h = img.size
                raise _fail(path, f"not enough memory to decode it ({w} x {h} pixels).") from None
            except Exception as exc:
                raise _fail(path, _decode_cause(exc)) from exc
            loaded = LoadedImage(
                rgb=rgb,
                path=path,
                format=str(img.format),
                original_mode=img.mode,
                original_size=stored_size,
                exif_transposed=orientation != 1 or header_orientation != 1,
                bit_depth=bit_depth,
                n_frames=_frame_count(img),
            )
    try:
        loaded.rgb = _apply_orientation(loaded.rgb, orientation)
    except MemoryError:
        raise _fail(path, "not enough memory to rotate it upright.") from None
    return loaded


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))  # fmt: skip


def _open_file(path: Path) -> IO[bytes]:
    # Check the kind before opening: opening a FIFO blocks until a writer comes, a device never ends.
    try:
        st = path.stat()
    except OSError as exc:
        raise _fail(path, _os_cause(exc) + ".") from exc
    if stat.S_ISDIR(st.st_mode):
        raise _fail(path, "not a regular file (it is a folder).")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _SPECIAL_KINDS if test(st.st_mode)), "a special file")
        raise _fail(path, f"not a regular file (it is {kind}).")
    if st.st_size == 0:
        raise _fail(path, "the file is empty (0 bytes).")
    try:
        return path.open("rb")
    except OSError as exc:
        raise _fail(path, _os_cause(exc) + ".") from exc


def load_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file to upright RGB uint8 (see the module docstring for the conversion rules).

    Raises ImageLoadError naming the file and the cause for anything unreadable, and for images with more
    than ``max_pixels`` pixels (checked from the header, before decoding; None: no limit of ours).
    """
    path = Path(path)
    with _open_file(path) as fh:
        try:
            return _decode(fh, path, max_pixels)
        except OSError as exc:  # read errors on the handle itself (I/O error, network share gone)
            raise _fail(path, _os_cause(exc) + ".") from exc


def load_image_bytes(
    data: bytes, name: str | Path = "<memory>", max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Like load_image for an in-memory file (e.g. from a zip or a drop); ``name`` is used in messages."""
    return _decode(io.BytesIO(data), Path(name), max_pixels)


def read_image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientation applied), read from the header without decoding.

    A PNG whose EXIF block follows its pixel data reports its stored size (that block is not read here).
    Raises ImageLoadError like load_image, also for images above Pillow's decompression-bomb limit.
    """
    path = Path(path)
    with _open_file(path) as fh:
        try:
            head, data_size = _read_head(fh, path)
            with _quiet_pillow():
                with _open(fh, path, head, data_size, None) as img:
                    w, h = _stored_size(img)
                    return (h, w) if _orientation(img, decoded=False) in (5, 6, 7, 8) else (w, h)
        except OSError as exc:
            raise _fail(path, _os_cause(exc) + ".") from exc

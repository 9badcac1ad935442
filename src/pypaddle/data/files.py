"""Data the user has on disk: IDX files (the MNIST format) and NumPy ``.npz`` archives."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from pypaddle.data.digits import Split
from pypaddle.errors import ConfigError

__all__ = ["load_idx", "load_npz"]

# IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/, "IDX format").
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist (or is not a file); check the path")
    return path


def load_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file (as MNIST and its relatives ship) into a tensor of its shape and type.

    The header (two zero bytes, a type code, the number of dimensions, then one big-endian
    int32 per dimension) gives the shape; the data follows in big-endian order. Unsigned
    bytes become ``uint8``, the other types ``int8``, ``int16``, ``int32``, ``float32``,
    ``float64``. A gzip-compressed file (``.gz``, or recognised by its magic bytes) is
    decompressed on the fly. Nothing is downloaded.

    Raises
    ------
    ConfigError
        If the file does not exist, its header is not IDX, or the data is shorter or longer
        than the header says.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> header = bytes([0, 0, 0x08, 3]) + np.array([2, 3, 4], dtype=">i4").tobytes()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "images-idx3-ubyte"
    ...     _ = path.write_bytes(header + images.tobytes())
    ...     tensor = load_idx(path)
    >>> tensor.shape, tensor.dtype, int(tensor[1, 2, 3])
    (torch.Size([2, 3, 4]), torch.uint8, 23)
    """
    path = _existing(path, "IDX file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ConfigError(f"{str(path)!r} is a damaged gzip file: {error}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_TYPES:
        raise ConfigError(
            f"{str(path)!r} is not an IDX file: it must start with two zero bytes and a type "
            f"code in {sorted(hex(code) for code in _IDX_TYPES)}, got {raw[:4]!r}"
        )
    dtype, dimensions = _IDX_TYPES[raw[2]], raw[3]
    header_size = 4 + 4 * dimensions
    if len(raw) < header_size:
        raise ConfigError(f"{str(path)!r} is cut off inside its IDX header")
    shape = tuple(int(size) for size in np.frombuffer(raw, ">i4", dimensions, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header_size != expected:
        raise ConfigError(
            f"{str(path)!r} holds {len(raw) - header_size} data bytes, but its IDX header "
            f"says shape {shape} of {dtype.name} ({expected} bytes); the file is damaged"
        )
    values = np.frombuffer(raw, dtype, offset=header_size).reshape(shape)
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def load_npz(
    path: str | Path,
    *,
    keys: tuple[str, str, str, str] = ("x_train", "y_train", "x_test", "y_test"),
) -> Split:
    """Read a train/test split from a NumPy ``.npz`` archive holding four arrays.

    ``keys`` names the arrays in the order ``x_train, y_train, x_test, y_test``.
    Floating-point features become ``float32``; integer labels become ``int64``
    (classification), floating-point targets ``float32`` (regression). Arrays are read
    without pickle, so an archive cannot run code.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "data.npz"
    ...     np.savez(path, x_train=np.zeros((4, 3)), y_train=np.arange(4),
    ...              x_test=np.ones((2, 3)), y_test=np.arange(2))
    ...     split = load_npz(path)
    >>> split.x_train.dtype, split.y_train.dtype, split.num_classes
    (torch.float32, torch.int64, 4)
    """
    path = _existing(path, "npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise ConfigError(
                    f"{str(path)!r} has no array {missing[0]!r}; it holds {archive.files}; "
                    "name the arrays with keys=(x_train, y_train, x_test, y_test)"
                )
            arrays = [archive[key] for key in keys]
    except (OSError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{str(path)!r} is not a readable .npz archive: {error}") from None
    return Split(*(_tensor(array, labels=index % 2 == 1) for index, array in enumerate(arrays)))


def _tensor(array: np.ndarray, *, labels: bool) -> torch.Tensor:
    if labels and np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

"""Data the user has on disk: IDX files (the MNIST format), NumPy ``.npz`` archives and
pickles that hold only plain data (the CIFAR format); no file can run code."""

from __future__ import annotations

import gzip
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pypaddle.data.digits import Split
from pypaddle.errors import ConfigError

__all__ = ["check_split", "load_idx", "load_npz", "load_plain_pickle"]

SPLIT_NAMES = ("x_train", "y_train", "x_test", "y_test")

# IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/, "IDX format").
_IDX_TYPES: dict[int, np.dtype[Any]] = {
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
    keys: Sequence[str] = SPLIT_NAMES,
) -> Split:
    """Read a train/test split from a NumPy ``.npz`` archive holding four arrays.

    ``keys`` names the arrays in the order ``x_train, y_train, x_test, y_test``.
    Floating-point features become ``float32``; integer labels become ``int64``
    (classification), floating-point targets ``float32`` (regression). Arrays are read
    without pickle, so an archive cannot run code.

    Raises
    ------
    ConfigError
        If the file is missing or not an ``.npz`` archive, an array is missing or not
        numeric, or the split cannot train a model (see :func:`check_split`).

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
    keys_ok = isinstance(keys, Sequence) and not isinstance(keys, str) and len(keys) == 4
    if not keys_ok or not all(isinstance(key, str) for key in keys):
        raise ConfigError(f"keys = {keys!r} must name 4 arrays: x_train, y_train, x_test, y_test")
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{str(path)!r} is not a readable .npz archive: {error}") from None
    for key, array in zip(keys, arrays):
        if array.dtype.kind not in "biuf":
            raise ConfigError(
                f"{str(path)!r}: array {key!r} holds {array.dtype} values; give numbers "
                "(bool, int or float arrays)"
            )
        if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
            raise ConfigError(
                f"{str(path)!r}: array {key!r} holds values above {np.iinfo(np.int64).max}; "
                "give labels as small non-negative ints"
            )
    split = Split(*(_tensor(array, labels=index % 2 == 1) for index, array in enumerate(arrays)))
    return check_split(split, source=repr(str(path)), names=keys)


# numpy's array reconstruction, whatever module this numpy version pickles it from: from
# its raw state (protocols 0 to 4) or from a buffer (protocol 5).
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_FROM_BUFFER = np.zeros(1).__reduce_ex__(5)[0]


def _refuse_objects(value: object) -> None:
    """Refuse a numpy array or dtype that holds Python objects, however it was made."""
    if isinstance(value, (np.ndarray, np.dtype)):
        dtype = value.dtype if isinstance(value, np.ndarray) else value
        if dtype.hasobject:
            raise pickle.UnpicklingError(
                f"it holds an array of Python objects (dtype {dtype.str!r}); only arrays of "
                "numbers are plain data"
            )


def _plain_dtype(*args: Any) -> np.dtype[Any]:
    dtype = np.dtype(*args)
    _refuse_objects(dtype)
    return dtype


def _latin1(text: str, encoding: str = "latin1") -> bytes:
    # Python 3 pickles bytes at protocol 2 as _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"it encodes text as {encoding!r}, not as latin1 bytes")
    return text.encode("latin1")


# Everything a plain-data pickle may name: numpy's array reconstruction (the module name
# changed with numpy 2) and the latin1 bytes of protocol 2. Dicts, lists, tuples, str,
# bytes, numbers, True/False/None need no name.
_PLAIN_NAMES: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROM_BUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROM_BUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _plain_dtype,
    ("_codecs", "encode"): _latin1,
}


class _PlainDataUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, so that every object it builds can be checked: only the
    names of :data:`_PLAIN_NAMES` are found, and whatever a call (REDUCE, NEWOBJ, OBJ, INST)
    or a state (BUILD) makes is refused if it is an array or dtype of Python objects.
    Checking ``numpy.dtype``'s arguments is not enough: ``_reconstruct(ndarray, shape,
    "O")`` or ``ndarray(shape, "O")`` makes an object array from a type string, and a
    BUILD can give a dtype the object flag after it was made."""

    dispatch = pickle._Unpickler.dispatch.copy()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PLAIN_NAMES[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it calls {module}.{name}") from None


def _checked(opcode: bytes) -> None:
    load = _PlainDataUnpickler.dispatch[opcode[0]]

    def load_checked(self: Any) -> None:
        if opcode == pickle.BUILD and not isinstance(self.stack[-2], (np.ndarray, np.dtype)):
            # A state given to anything else (one of the functions above) would set its
            # attributes: for this process, not only for this file.
            built = self.stack[-2]
            raise pickle.UnpicklingError(f"it sets the state of {type(built).__name__} {built!r}")
        load(self)
        _refuse_objects(self.stack[-1])

    _PlainDataUnpickler.dispatch[opcode[0]] = load_checked


def _refuse_names(value: object) -> None:
    """Refuse a result that holds one of the callables of :data:`_PLAIN_NAMES` itself
    (they may be called while a file loads, never be its data)."""
    pending, seen = [value], set()
    callables = {id(function) for function in _PLAIN_NAMES.values()}
    while pending:
        item = pending.pop()
        if id(item) in callables:
            raise pickle.UnpicklingError(f"it gives {item!r} as data")
        if isinstance(item, (dict, list, tuple)) and id(item) not in seen:
            seen.add(id(item))
            pending.extend(item.values() if isinstance(item, dict) else item)
            if isinstance(item, dict):
                pending.extend(item)


for _opcode in (
    pickle.REDUCE,
    pickle.BUILD,
    pickle.NEWOBJ,
    pickle.NEWOBJ_EX,
    pickle.OBJ,
    pickle.INST,
):
    _checked(_opcode)


def load_plain_pickle(path: str | Path) -> Any:
    """Read a pickle that holds only plain data: dicts, lists, tuples, str, bytes, numbers
    and numpy arrays of numbers (as CIFAR's python batches do).

    A pickle can name any importable function and have it called while it loads; this
    reader allows only numpy's array reconstruction, so a file that would call anything
    else (``os.system``, ``builtins.eval``, a class of its own) is refused before that
    call. An array (or dtype) of Python objects is refused too, however the file makes it
    (it runs no code, but it is not data a model can read), and so is a file that sets the
    state of anything but an array or a dtype, or gives one of the allowed functions as
    data. Python 2 strings (in CIFAR's
    files) are read as latin1 ``str``.

    Raises
    ------
    ConfigError
        If the file does not exist, is not a pickle, names anything but plain data or
        makes an array of Python objects (the message names the file and the reason).

    Examples
    --------
    >>> import tempfile, pathlib, pickle, numpy as np
    >>> batch = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [3, 1]}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "batch"
    ...     _ = path.write_bytes(pickle.dumps(batch, protocol=2))
    ...     loaded = load_plain_pickle(path)
    >>> loaded["labels"], loaded["data"].tolist()
    ([3, 1], [[0, 1, 2], [3, 4, 5]])
    >>> import os
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "evil"
    ...     _ = path.write_bytes(pickle.dumps(os.getcwd))
    ...     load_plain_pickle(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: '...evil' is refused: it calls ...getcwd, ...
    """
    path = _existing(path, "pickle file")
    try:
        with path.open("rb") as handle:
            loaded = _PlainDataUnpickler(handle, encoding="latin1").load()
        _refuse_names(loaded)
        return loaded
    except pickle.UnpicklingError as error:
        raise ConfigError(
            f"{str(path)!r} is refused: {error}, and pypaddle reads only pickles of plain "
            "data (dicts, lists, str, bytes, numbers, numpy arrays), never code; give the "
            "data set's original file"
        ) from None
    except (
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
    ) as error:
        raise ConfigError(
            f"{str(path)!r} is not a readable pickle of plain data ({type(error).__name__}: "
            f"{error}); the file is damaged or of another format"
        ) from None


def _tensor(array: np.ndarray, *, labels: bool) -> torch.Tensor:
    if labels and np.issubdtype(array.dtype, np.integer):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))
    with np.errstate(over="ignore"):  # values beyond float32 become inf: check_split says so
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def check_split(split: Split, *, source: str, names: Sequence[str] = SPLIT_NAMES) -> Split:
    """Check that a split can train a model, before anything trains; return it.

    Features need one row per sample (at least 2 dimensions) and the same shape of sample
    in train and test; labels one per sample: integer class labels >= 0 (1 dimension) or
    floating-point targets (1 or 2 dimensions), of the same kind in train and test; no NaN
    or infinite values anywhere; at least one sample in each part. ``source`` (a file
    name) and ``names`` (the arrays' names there) appear in the messages.

    Raises
    ------
    ConfigError
        Naming the source, the arrays and the fix.

    Examples
    --------
    >>> bad = Split(torch.ones(4, 2), torch.tensor([0, 1, -1, 0]), torch.ones(1, 2),
    ...             torch.tensor([0]))
    >>> check_split(bad, source="data.npz")
    Traceback (most recent call last):
    ...
    pypaddle.errors.ConfigError: data.npz: y_train holds negative class labels (the smallest is -1); class labels are ints in [0, classes)
    """  # noqa: E501
    x_train, y_train, x_test, y_test = split
    parts = ((x_train, y_train, names[0], names[1]), (x_test, y_test, names[2], names[3]))
    for x, y, x_name, y_name in parts:
        if x.dim() < 2:
            raise ConfigError(
                f"{source}: {x_name} has shape {tuple(x.shape)}; give one row per sample, "
                "shape [samples, features] (or [samples, channels, height, width])"
            )
        if x.shape[0] == 0:
            raise ConfigError(f"{source}: {x_name} holds no samples; give at least one")
        wanted = (1, 2) if y.is_floating_point() else (1,)
        if y.dim() not in wanted:
            kind = "float targets" if y.is_floating_point() else "integer class labels"
            raise ConfigError(
                f"{source}: {y_name} has shape {tuple(y.shape)}; give {kind} of shape "
                f"[samples]{' or [samples, outputs]' if y.is_floating_point() else ''}"
            )
        if y.shape[0] != x.shape[0]:
            raise ConfigError(
                f"{source}: {x_name} holds {x.shape[0]} samples but {y_name} {y.shape[0]} "
                "labels; give one label per sample"
            )
        for tensor, name in ((x, x_name), (y, y_name)):
            if tensor.is_floating_point():
                bad = int((~torch.isfinite(tensor)).sum())
                if bad:
                    raise ConfigError(
                        f"{source}: {name} holds {bad} NaN or infinite values (or values too "
                        "large for float32); remove or replace them"
                    )
        if not y.is_floating_point() and int(y.min()) < 0:
            raise ConfigError(
                f"{source}: {y_name} holds negative class labels (the smallest is "
                f"{int(y.min())}); class labels are ints in [0, classes)"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ConfigError(
            f"{source}: a sample of {names[0]} has shape {tuple(x_train.shape[1:])} but one of "
            f"{names[2]} {tuple(x_test.shape[1:])}; give train and test samples of one shape"
        )
    if y_train.is_floating_point() != y_test.is_floating_point():
        raise ConfigError(
            f"{source}: {names[1]} and {names[3]} must both hold integer class labels or both "
            f"float targets, got {y_train.dtype} and {y_test.dtype}"
        )
    if y_train.shape[1:] != y_test.shape[1:]:
        raise ConfigError(
            f"{source}: {names[1]} has targets of shape {tuple(y_train.shape[1:])} but "
            f"{names[3]} {tuple(y_test.shape[1:])}; give targets of one shape"
        )
    return split

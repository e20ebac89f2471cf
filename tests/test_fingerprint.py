"""scarlet_moon.models.fingerprint: a large file's fingerprint is remembered, and never outlives a change
to the file."""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from pathlib import Path

import pytest

import scarlet_moon.models.fingerprint as fp
from scarlet_moon.models.card import BUNDLED_MODEL


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SM_FINGERPRINT_CACHE", raising=False)
    return tmp_path / "cache" / "fingerprints"


def sha16(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def big_file(path: Path, fill: bytes = b"a") -> Path:
    path.write_bytes(fill * fp.MIN_SIZE + b"tail")
    return path


def test_a_large_file_is_hashed_once_then_remembered(tmp_path: Path, cache: Path, monkeypatch):
    f = big_file(tmp_path / "m.safetensors")
    assert fp.file_fingerprint(f) == sha16(f)
    assert len(list(cache.iterdir())) == 1
    monkeypatch.setattr(fp, "_hash", lambda p: pytest.fail("hashed again"))
    assert fp.file_fingerprint(str(f)) == sha16(f)


def test_small_files_and_a_disabled_cache_are_always_hashed(tmp_path: Path, cache: Path, monkeypatch):
    small = tmp_path / "s.bin"
    small.write_bytes(b"x" * 100)
    assert fp.file_fingerprint(small) == sha16(small)
    monkeypatch.setenv("SM_FINGERPRINT_CACHE", "0")
    assert fp.file_fingerprint(big_file(tmp_path / "m")) == sha16(tmp_path / "m")
    assert not cache.exists()


def test_a_rewrite_with_the_same_size_and_mtime_is_seen(tmp_path: Path, cache: Path):
    f = big_file(tmp_path / "m")
    first = fp.file_fingerprint(f)
    st = f.stat()
    for fill in itertools.islice(itertools.cycle([b"b", b"c"]), 5000):  # same size; mtime put back
        big_file(f, fill)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        if f.stat().st_ctime_ns != st.st_ctime_ns:  # a change the file's clock could see (see the module)
            break
        time.sleep(0.001)
    else:
        pytest.fail("the file system never moved the file's ctime: the cache cannot see rewrites here")
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert fp.file_fingerprint(f) == sha16(f) != first


def test_a_replaced_file_is_hashed_again(tmp_path: Path, cache: Path):
    f, g = big_file(tmp_path / "m"), big_file(tmp_path / "g", b"c")
    first = fp.file_fingerprint(f)
    os.replace(g, f)
    assert fp.file_fingerprint(f) == sha16(f) != first


@pytest.mark.parametrize("junk", [b"", b"zz" * 8, b"\xff" * 16, b"0123456789abcdef0"])
def test_a_corrupt_entry_is_ignored_and_made_again(tmp_path: Path, cache: Path, junk: bytes):
    f = big_file(tmp_path / "m")
    fp.file_fingerprint(f)
    (entry,) = cache.iterdir()
    entry.write_bytes(junk)
    assert fp.file_fingerprint(f) == sha16(f)
    assert entry.read_bytes() == sha16(f).encode()


def test_an_unusable_cache_only_costs_time(tmp_path: Path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("SCARLET_MOON_CACHE", str(tmp_path / "file"))
    f = big_file(tmp_path / "m")
    assert fp.file_fingerprint(f) == sha16(f)


def test_a_missing_file_is_an_os_error_as_before(tmp_path: Path, cache: Path):
    with pytest.raises(FileNotFoundError):
        fp.file_fingerprint(tmp_path / "gone.safetensors")


def test_at_most_keep_entries_stay(tmp_path: Path, cache: Path, monkeypatch):
    monkeypatch.setattr(fp, "KEEP", 3)
    files = [big_file(tmp_path / f"m{i}") for i in range(5)]
    for f in files:
        fp.file_fingerprint(f)
    assert len(list(cache.iterdir())) == 3


def test_the_bundled_model_fingerprint_is_its_bytes(cache: Path):
    assert fp.file_fingerprint(BUNDLED_MODEL) == sha16(BUNDLED_MODEL) == fp.file_fingerprint(BUNDLED_MODEL)


def test_the_entries_kept_are_the_last_used(tmp_path: Path, cache: Path, monkeypatch):
    monkeypatch.setattr(fp, "KEEP", 2)
    a, b, c = (big_file(tmp_path / name, name.encode()) for name in "abc")
    fp.file_fingerprint(a)
    (entry_a,) = cache.iterdir()
    os.utime(entry_a, ns=(0, 0))  # made long ago (explicit times: file clocks tick coarsely)
    fp.file_fingerprint(b)
    (entry_b,) = set(cache.iterdir()) - {entry_a}
    os.utime(entry_b, ns=(10**9, 10**9))  # made after a
    fp.file_fingerprint(a)  # used again, now: it stays, and b, the least recently used, goes
    fp.file_fingerprint(c)
    assert set(cache.iterdir()) - {entry_a, entry_b} and entry_a.exists() and not entry_b.exists()
    assert len(list(cache.iterdir())) == 2


def test_a_read_only_cache_still_serves(tmp_path: Path, cache: Path, monkeypatch):
    f = big_file(tmp_path / "m")
    fp.file_fingerprint(f)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fp.os, "utime", refuse)
    monkeypatch.setattr(fp, "_hash", lambda p: pytest.fail("hashed again"))
    assert fp.file_fingerprint(f) == sha16(f)

"""Every .npy the index reads is parsed one thread at a time (files.load_npy):
CPython 3.11's AST constructor, which numpy's header parser uses, fails under
concurrent use ("AST constructor recursion depth mismatch")."""

import threading
import time
from pathlib import Path

import numpy as np

import karabakh_qa
from karabakh_qa.store.embedded import files


def test_load_npy_lets_one_thread_parse_at_a_time(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    np.save(path, np.arange(5))
    inside, most = [0], [0]
    real = np.load

    def slow_load(*args, **kwargs):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        try:
            return real(*args, **kwargs)
        finally:
            inside[0] -= 1

    monkeypatch.setattr(np, "load", slow_load)
    out = []
    threads = [threading.Thread(target=lambda: out.append(files.load_npy(path))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and [a.tolist() for a in out] == [[0, 1, 2, 3, 4]] * 6


def test_the_index_reads_npy_files_only_through_load_npy():
    store = Path(karabakh_qa.__file__).parent / "store"
    calls = [
        f"{path.relative_to(store)}:{n}"
        for path in sorted(store.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "np.load(" in line and path.name != "files.py"
    ]
    assert calls == []

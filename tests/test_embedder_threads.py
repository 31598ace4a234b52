"""The test embedder is shared by a build thread and query threads: encoding at once
must give each thread the vectors it would get alone."""

import sys
import threading

import numpy as np

from karabakh_qa.embed import HashEmbedder


def test_concurrent_encodes_give_the_vectors_of_one_thread():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as CPython can
    shared, errors = HashEmbedder(16), []
    texts = [[f"w{t}x{i} w{t}y{i} common{i % 7}" for i in range(400)] for t in range(6)]

    def work(batch: list[str]) -> None:
        try:
            for k in range(0, len(batch), 3):
                got = shared.encode(batch[k : k + 3])
                want = HashEmbedder(16).encode(batch[k : k + 3])
                if not np.allclose(got, want, atol=1e-6):  # rows in another order
                    errors.append(batch[k])
        except Exception as exc:  # noqa: BLE001 (the race showed as a shape error)
            errors.append(repr(exc))

    try:
        threads = [threading.Thread(target=work, args=(b,)) for b in texts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []

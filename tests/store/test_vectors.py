import numpy as np

from karabakh_qa.store.embedded import vectors


def test_six_bit_sentence_codes_pack_four_to_three_bytes_and_round_trip():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    codec = vectors.SENTENCE_CODEC
    codes = vectors.encode(x, codec)
    assert codes.max() <= 63
    packed = vectors.pack_codes(codes, codec)
    assert packed.shape == (5, 288)
    assert (vectors.unpack_codes(packed, codec) == codes).all()
    decoded = vectors.decode(codes, codec)
    inside = np.abs(x) < 0.25
    assert np.abs(decoded - x)[inside].max() <= 0.25 / 63 + 1e-6  # half a 6-bit step
    assert (vectors.encode(decoded, codec) == codes).all()  # re-encoding is exact
    q = x[0]
    assert np.allclose(vectors.cosines(packed, q, codec), decoded @ q, atol=1e-5)
    empty = vectors.pack_codes(np.zeros((0, 384), np.uint8), codec)
    assert empty.shape == (0, 288)

"""DCMIF's models (fusionlib.dcmif.model): closed-form solvers against dense solves, shapes,
parameter counts against those computed from the official code (docs/dcmif.md#parameters), FiLM, gate, bad inputs."""

import pytest
import torch

from fusionlib.dcmif import model as m


def dense_correlation(d, c, h, w):
    """The matrix A of S ↦ Σ_c d_c ⋆ S_c (circular), column by column."""
    return torch.stack([m.correlate(e.reshape(1, c, h, w), d, "circular").reshape(-1)
                        for e in torch.eye(c * h * w, dtype=torch.float64)], 1)


def dense_dictionary_operator(s):
    """The matrix X of d ↦ Σ_c d_c ⋆ S_c (circular) for one sample s (C, H, W), k = 3."""
    c = s.shape[0]
    return torch.stack([m.correlate(s[None], e.reshape(c, 3, 3), "circular").reshape(-1)
                        for e in torch.eye(c * 9, dtype=torch.float64)], 1)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_csb_equals_dense_solve(gen):
    b, c, h, w = 2, 3, 8, 10
    image, s_prev = torch.rand(b, 1, h, w, generator=gen, dtype=torch.float64), torch.rand(b, c, h, w, generator=gen, dtype=torch.float64)
    d = torch.randn(b, c, 3, 3, generator=gen, dtype=torch.float64)
    mu = torch.tensor([0.3, 2.0], dtype=torch.float64)
    out = m.csb_solve(image, s_prev, d, mu)
    for i in range(b):
        a = dense_correlation(d[i], c, h, w)
        x = torch.linalg.solve(a.T @ a + mu[i] * torch.eye(c * h * w, dtype=torch.float64),
                               a.T @ image[i].reshape(-1) + mu[i] * s_prev[i].reshape(-1))
        assert torch.linalg.norm(out[i].reshape(-1) - x) / torch.linalg.norm(x) < 1e-10
        if i == 0:
            bug = m.csb_solve(image, s_prev, d, mu, one_d_bug=True)[0].reshape(-1)
            assert torch.linalg.norm(bug - x) / torch.linalg.norm(x) > 1e-2  # the code's 1-D FFT is not the solution


def test_csb_shared_dictionary_and_zero_dictionary(gen):
    image, s_prev = torch.rand(2, 1, 8, 8, generator=gen), torch.rand(2, 4, 8, 8, generator=gen)
    d = torch.randn(4, 5, 5, generator=gen)
    assert torch.allclose(m.csb_solve(image, s_prev, d, 0.5), m.csb_solve(image, s_prev, d.expand(2, 4, 5, 5), 0.5), atol=1e-6)
    # D_(0) = 0: the data term vanishes and the CSB returns its prior (JSRL's first IV-DLB)
    assert torch.allclose(m.csb_solve(image, s_prev, torch.zeros(4, 5, 5), 0.5), s_prev, atol=1e-6)


def test_correlate_circular_is_the_fourier_product(gen):
    s, d = torch.rand(2, 3, 8, 12, generator=gen, dtype=torch.float64), torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    fourier = torch.fft.ifft2((m.otf(d, (8, 12)).conj() * torch.fft.fft2(s)).sum(1, keepdim=True)).real
    assert torch.allclose(m.correlate(s, d, "circular"), fourier, atol=1e-12)


def test_dsb_normal_equations_equal_dense(gen):
    s, image = torch.rand(2, 2, 6, 7, generator=gen, dtype=torch.float64), torch.rand(2, 1, 6, 7, generator=gen, dtype=torch.float64)
    gram, rhs = m.dsb_normal_equations(s, image, 3)
    for i in range(2):
        x = dense_dictionary_operator(s[i])
        assert torch.allclose(gram[i], x.T @ x, atol=1e-10)
        assert torch.allclose(rhs[i], x.T @ image[i].reshape(-1), atol=1e-10)


@pytest.mark.parametrize("mode", ["joint", "sequential"])
def test_dsb_equals_dense_solve(gen, mode):
    c, k = 3, 3
    pairs = [(torch.rand(2, c, 8, 8, generator=gen, dtype=torch.float64), torch.rand(2, 1, 8, 8, generator=gen, dtype=torch.float64))
             for _ in range(2)]
    d_prev = torch.randn(2, c, k, k, generator=gen, dtype=torch.float64)
    alpha = torch.tensor([0.5, 3.0], dtype=torch.float64)
    out = m.dsb_solve(pairs, d_prev, alpha, mode=mode)
    eye = torch.eye(c * k * k, dtype=torch.float64)
    for i in range(2):
        xs = [(dense_dictionary_operator(s[i]), img[i].reshape(-1)) for s, img in pairs]
        if mode == "joint":  # Eq. 8: one problem over both modalities
            x = torch.linalg.solve(sum(a.T @ a for a, _ in xs) + alpha[i] * eye,
                                   sum(a.T @ y for a, y in xs) + alpha[i] * d_prev[i].reshape(-1))
        else:  # the code: IR, then VIS with the IR result as the prior
            x = d_prev[i].reshape(-1)
            for a, y in xs:
                x = torch.linalg.solve(a.T @ a + alpha[i] * eye, a.T @ y + alpha[i] * x)
        assert torch.linalg.norm(out[i].reshape(-1) - x) / torch.linalg.norm(x) < 1e-10
    with pytest.raises(ValueError, match="joint"):
        m.dsb_solve(pairs, d_prev, alpha, mode="both")


def test_solvers_gradcheck(gen):
    image = torch.rand(1, 1, 8, 8, generator=gen, dtype=torch.float64)
    s = torch.rand(1, 2, 8, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    d = torch.randn(1, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, d: m.csb_solve(image, s, d, 0.7), (s, d))
    assert torch.autograd.gradcheck(lambda s, d: m.dsb_solve([(s, image)], d, 0.7), (s, d))


def test_dsb_hand_written_backward_passes(gen):
    """The lag correlation and the SPD solve have hand-written backward passes: gradcheck them on a
    batch of two with both modalities (joint and sequential), and the solve against autograd through
    the Cholesky factorisation."""
    images = [torch.rand(2, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2)]
    s = [torch.rand(2, 2, 8, 8, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    d = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    for mode in ("joint", "sequential"):
        assert torch.autograd.gradcheck(
            lambda s0, s1, d: m.dsb_solve([(s0, images[0]), (s1, images[1])], d, 0.3, mode=mode), (*s, d))
    assert torch.autograd.gradcheck(lambda s: m._LagCorrelation.apply(s, 2), (s[0],))
    a0 = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)
    a = (a0 @ a0.mT + torch.eye(5, dtype=torch.float64)).requires_grad_()
    rhs = torch.randn(2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    ours = torch.autograd.grad((m._cholesky_solve(a, rhs) * g).sum(), (a, rhs))
    chol = torch.linalg.cholesky(a)
    ref = torch.autograd.grad((torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1) * g).sum(), (a, rhs))
    sym = lambda x: (x + x.mT) / 2  # autograd's Cholesky gradient is the symmetric part
    assert torch.allclose(sym(ours[0]), sym(ref[0]), atol=1e-10) and torch.allclose(ours[1], ref[1], atol=1e-10)


def test_cholesky_failure_is_an_error():
    with pytest.raises(torch.linalg.LinAlgError, match="positive definite"):
        m._cholesky_solve(-torch.eye(4, dtype=torch.float64)[None], torch.ones(1, 4, dtype=torch.float64))


def test_parameter_counts_match_the_code():
    """docs/dcmif.md#parameters: counts computed analytically from the official code."""
    jsrl = m.JSRL()
    assert m.count_parameters(jsrl.head["ir"]) == 40_064 and m.count_parameters(jsrl.coenet["vis"]) == 2_284_306
    assert m.count_parameters(jsrl.dicnet) == 222_144 and m.count_parameters(jsrl.hypnet[0]) == 1_540
    assert m.count_parameters(jsrl) == 4_872_424
    assert m.count_parameters(m.RIN()) == 15_741_296
    assert m.count_parameters(m.FiLM(768)) == 98_432                      # BERT's 768-d CLS
    assert m.count_parameters(m.RFN(gate=False)) == 489_024                # the code's CAF
    total = sum(m.count_parameters(x) for x in (jsrl, m.RIN(), m.FiLM(768), m.RFN(gate=False)))
    assert total == 21_201_176
    assert m.count_parameters(m.RFN(gate=True)) - 489_024 == 128 * 128 * 9 + 128 - (128 * 64 * 9 + 64)  # gate logits
    # our default (docs/dcmif.md#parameters): 384-d MiniLM FiLM and Eq. 19's gate
    assert sum(m.count_parameters(x) for x in (jsrl, m.RIN(), m.FiLM(384), m.RFN(gate=True))) == 21_225_816


def test_dicnet_starts_as_the_identity(gen):
    d, beta = torch.randn(2, 8, 5, 5, generator=gen), torch.tensor([0.5, 2.0])
    assert torch.equal(m.DicNet(8)(d, beta), d)                           # zero-initialised last layer (ours)
    assert not torch.allclose(m.DicNet(8, zero_init=False)(d, beta), d)  # PyTorch's default init (the code)


def test_jsrl_shapes_on_odd_sizes(gen):
    jsrl = m.JSRL(n_atoms=8, kernel=3, n_iter=2)
    ir, vis = torch.rand(2, 1, 19, 26, generator=gen), torch.rand(2, 1, 19, 26, generator=gen)
    out = jsrl(ir, vis)
    assert out["s_ir"].shape == (2, 8, 19, 26) and out["d"].shape == (2, 8, 3, 3)
    assert out["recon_vis"].shape == (2, 1, 19, 26) and len(out["steps"]) == 2
    assert torch.equal(out["steps"][0][2], torch.zeros(2, 8, 3, 3))        # D_(0) = 0
    (out["recon_ir"].mean() + out["recon_vis"].mean()).backward()
    assert all(p.grad is not None for p in jsrl.coenet.parameters())
    with pytest.raises(ValueError, match="one size"):
        jsrl(ir, vis[..., :-1])
    with pytest.raises(ValueError, match="odd"):
        m.JSRL(kernel=4)


def test_rin_rfn_wsa_shapes(gen):
    x = torch.rand(1, 64, 16, 24, generator=gen)
    assert m.RIN()(x).shape == x.shape
    s_f, w = m.RFN()(x, x.flip(-1))
    assert s_f.shape == x.shape and w.shape == (1, 2, 64, 16, 24)
    assert m.RFN(gate=False)(x, x)[1] is None
    with pytest.raises(ValueError, match="divisible by 8"):
        m.WSA(64)(x[..., :12])


def test_film_identity():
    film = m.FiLM(5, 4)
    with torch.no_grad():
        film.gamma.weight.zero_(), film.gamma.bias.fill_(1.0), film.beta.weight.zero_(), film.beta.bias.zero_()
    s = torch.randn(2, 4, 6, 6)
    assert torch.equal(film(s, torch.randn(2, 5)), s)                    # γ = 1, β = 0
    with torch.no_grad():
        film.beta.bias.fill_(0.5)
    assert torch.allclose(film(s, torch.randn(2, 5)), s + 0.5)


def test_gate_weights_are_a_convex_combination(gen):
    rfn = m.RFN(16)
    a, b = torch.randn(2, 16, 8, 8, generator=gen), torch.randn(2, 16, 8, 8, generator=gen)
    s_f, w = rfn(a, b)
    assert torch.allclose(w.sum(1), torch.ones_like(w[:, 0])) and (w >= 0).all() and (w <= 1).all()
    assert (s_f >= torch.minimum(a, b) - 1e-6).all() and (s_f <= torch.maximum(a, b) + 1e-6).all()
    assert torch.allclose(rfn(a, a)[0], a, atol=1e-6)                     # same source twice → that source


def _tiny_dcmif(prior=None, film=None):
    jsrl = m.JSRL(n_atoms=8, kernel=3)
    codec = m.DictionaryCodec(jsrl, torch.randn(8, 3, 3) * 0.1)
    return m.DCMIF(codec, m.RIN(8), film, m.RFN(8), prior)


@pytest.mark.parametrize("size", [(8, 8), (29, 43), (5, 70)])
def test_vis_only_inference_on_any_size(gen, size):
    model = _tiny_dcmif().eval()
    vis = torch.rand(1, 1, *size, generator=gen)
    out = model(vis)
    assert out["fused"].shape == vis.shape and out["pir"].shape == vis.shape and torch.isfinite(out["fused"]).all()
    from fusionlib.dcmif.inference import fuser
    rgb = torch.rand(1, 3, *size, generator=gen)
    fused = fuser(model)(None, rgb)  # VIS only: no IR is needed
    assert fused.shape == (1, 3, *size) and 0 <= float(fused.min()) and float(fused.max()) <= 1


def test_dcmif_bad_inputs():
    jsrl = m.JSRL(n_atoms=8, kernel=3)
    with pytest.raises(ValueError, match="shared dictionary"):
        m.DictionaryCodec(jsrl, torch.zeros(8, 5, 5))
    with pytest.raises(ValueError, match="text prior"):
        m.DCMIF(m.DictionaryCodec(jsrl, torch.zeros(8, 3, 3)), m.RIN(8), m.FiLM(4, 8), None, None)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        _tiny_dcmif()(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match="too small"):
        m.pad_to_multiple(torch.rand(1, 1, 3, 16))
    with pytest.raises(ValueError, match="larger than the image"):
        m.otf(torch.ones(5, 5), (4, 4))


def test_codec_stays_frozen():
    jsrl = m.JSRL(n_atoms=8, kernel=3)
    codec = m.DictionaryCodec(jsrl, torch.zeros(8, 3, 3))
    codec.train()
    assert not codec.jsrl.training and not any(p.requires_grad for p in codec.parameters())


def test_centred_codes_are_raw_codes_less_a_black_images(gen):
    """Centring is an exact affine change of the coefficients: the black image codes to 0, σ only rescales, and the
    decoded image is the raw one less the fixed pattern D ∗ REN(0) that every raw code carries."""
    jsrl = m.JSRL(n_atoms=8, kernel=3).double()
    d = torch.randn(8, 3, 3, generator=gen, dtype=torch.float64) * 0.1
    raw, centred, halved = m.DictionaryCodec(jsrl, d), m.DictionaryCodec(jsrl, d, 1.0), m.DictionaryCodec(jsrl, d, 0.5)
    image = torch.rand(2, 1, 16, 24, generator=gen, dtype=torch.float64)
    assert not raw.centred and "code_scale" not in raw.state_dict() and float(centred.state_dict()["code_scale"]) == 1.0
    assert centred.encode(torch.zeros_like(image), "ir").abs().max() < 1e-12  # batch 2 against the cached batch 1: last digits
    pattern = raw.decode(raw.encode(torch.zeros_like(image[:1]), "ir"))
    assert pattern.abs().max() > 1e-3  # an untrained HeadNet's σ-channel already gives the black image a code
    torch.testing.assert_close(centred.decode(centred.encode(image, "ir")), raw.decode(raw.encode(image, "ir")) - pattern)
    torch.testing.assert_close(halved.encode(image, "vis"), 2 * centred.encode(image, "vis"))
    torch.testing.assert_close(halved.decode(halved.encode(image, "vis")), centred.decode(centred.encode(image, "vis")))
    with torch.no_grad():  # a new dictionary (load_state_dict copies in place) is a new black-image code
        centred.dictionary.mul_(2)
    assert centred.encode(torch.zeros_like(image), "ir").abs().max() < 1e-12
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="code_scale"):
            m.DictionaryCodec(jsrl, d, bad)

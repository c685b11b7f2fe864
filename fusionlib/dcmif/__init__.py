"""DCMIF (CVPR 2026, "Missing No More"): fusion from the visible image alone through a convolutional
dictionary shared with the infrared image (docs/dcmif.md). Notebooks 20–23.

| paper | code | notebook |
|---|---|---|
| convolutional synthesis, Eq. 4 (coefficient step) | ``model.otf``, ``model.correlate``, ``model.csb_solve`` | 20 §1–3 |
| Eq. 8 (dictionary step) | ``model.dsb_normal_equations``, ``model.dsb_solve`` | 20 §4–5 |
| §3.2, Alg. 1: JSRL, the unfolded IV-DLBs (Eq. 6, 10) | ``model.HeadNet``, ``model.HypNet``, ``model.CoeNet``, ``model.DicNet``, ``model.JSRL`` | 21 §1–2 |
| Eq. 11, stage 1 | ``loss.jsrl_loss``, ``train.train_stage1`` | 21 §3 |
| the frozen shared dictionary | ``train.shared_dictionary``, ``model.DictionaryCodec`` | 21 §4–5 |
| §3.3, VGII: RIN, text prior, FiLM (Eq. 12–14) | ``model.RIN``, ``model.FiLM``, ``text.make_text_prior``, ``text.TemplateCritic`` | 22 §1 |
| Eq. 15–18, 20–21 (losses of stages 2–3) | ``loss.inference_loss``, ``loss.fusion_loss`` | 22 §2 |
| §3.4, AFRI: the gated fusion (Eq. 19) | ``model.RFN``, ``model.DCMIF`` | 22 §1 |
| three-stage training | ``train.Variant``, ``train.train_dcmif`` | 22 §3 |
| Tables 1, 3–7, 8–9 recast | ``inference.fuser``, ``inference.pseudo_ir_fuser``, ``complexity.complexity``, ``complexity.flop_breakdown`` | 22 §4–7 |
| the authors' training code beside ours (control arm) | ``control.authors_dcmif``, ``control.authors_vgii_run``, ``control.twin_run`` | 23 §1–4 |
| | ``control.collapse_candidates``, ``text.LayerNormed`` | 23 §2 |
"""

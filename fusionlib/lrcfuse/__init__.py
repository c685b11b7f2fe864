"""LRCFuse (Sensors 2026): LRRNet's low-rank/sparse encoders plus convolutional sparse coding of the
common features, reconstructed from the prose (docs/lrcfuse.md). Notebooks 10–13.

| paper | code | notebook |
|---|---|---|
| LRR → ISTA → LISTA, the LLRR block | ``lista.ista``, ``lista.LISTA``, ``lista.llrr_block_as_ista`` | 10 §1–4 |
| | the block itself: ``fusionlib.common.lrrnet.LLRRBlock`` | 10 §4 |
| low-rank and sparse parts (LLRR encoders) | ``fusionlib.common.lrrnet.LLRREncoder`` | 10 §5 |
| CFPM, convolutional sparse coding (Eq. 15, Alg. 2) | ``model.CFPMStage``, ``model.CFPM``, ``model.cfpm_objective``, ``model.analytic_descent`` | 11 §1 |
| the whole network, Table 9 (size, FLOPs) | ``model.LRCFuse``, ``model.count_parameters``, ``model.flops`` | 11 §2 |
| multi-level loss (pixel, shallow, middle, deep Gram, Sobel) | ``loss.MultiLevelLoss``, ``loss.LRCFUSE_WEIGHTS``, ``loss.LRRNET_WEIGHTS`` | 12 §1 |
| training, Fig. 17 | ``train.train``, ``train.run_folder`` | 12 §2 |
| Tables 6–8, sweeps (1–5), ablations (10–12) | ``fusionlib.metrics.dataset.score`` with ``fusionlib.common.lrrnet.rgb_fuser`` | 12 §3–4 |
| LRRNet's trainer beside ours (control arm, level 1) | ``control.authors_lrrnet``, ``control.authors_lrrnet_run`` | 13 §1–2 |
| | ``control.grey_crops``, ``control.OPTIMISER`` | 13 §1–2 |
"""

"""Evaluation as a library: validation counts (used by training and `eval`) and the logits file
(written by `eval --save-logits`, read by `plot gap`)."""

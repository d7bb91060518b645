"""What the eight published 3D medical VLM servers share: the weights catalogue and checks, the
option parsing and model card, slice rendering, the slice-prompt layout, greedy decoding from a
cached per-volume prefix, and output post-processing. Nothing here imports torch at import time."""

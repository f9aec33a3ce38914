"""The reference AI service: crop/standardise, an ABCD-rule pre-classifier and click-to-segment (OpenCV's GrabCut)
over HTTP, offline (numpy, Pillow, OpenCV). Transparent heuristics that ship so the pipeline works without a model;
not a diagnostic device."""

"""The reference AI service: crop/standardise and an ABCD-rule pre-classifier over HTTP, offline (numpy, Pillow).
A transparent heuristic that ships so the pipeline works without a model; not a diagnostic device."""

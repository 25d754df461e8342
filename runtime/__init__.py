"""The runtime: what training and inference both use. Checkpoints and the models they rebuild,
run folders, device and precision, the process group, and the scores (frame metrics, Jaccard).

Below the drivers (train/, infer/), above the models and the data: it imports those, never a
driver."""

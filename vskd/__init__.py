"""Vision-to-Sensor Knowledge Distillation (VSKD) for human activity recognition.

Ni et al., "Cross-modal knowledge distillation for vision-to-sensor action recognition",
ICASSP 2022. A multi-scale TRN video teacher (BN-Inception) distils into a ResNet18 student
that sees only a Gramian Angular Field image of a wrist accelerometer.

Modules, one concept each:
    params      params.yaml loading and validation
    index       the sample index every dataset adapter produces, and the splits
    datasets    dataset adapters (synthetic, UTD-MHAD layout reader)
    gaf         Gramian Angular Field encoding
    frames      video decoding (PyAV), TSN segment sampling and clip augmentation
    h5store     atomic HDF5 writers/readers keyed by sample id
    models      BN-Inception, multi-scale TRN teacher, GAF student
    losses      KD, RKD distance, RKD angle, semantic loss and their weighted sum (DASK)
    training    the training loops shared by the teacher, student and distill stages
    evaluate    metrics (per training seed, mean and std, paired tests), confusion matrices
    stats       exact McNemar test, paired bootstrap interval, mean and std over seeds
    minirocket  the MiniRocket reference (aeon) on the raw accelerometer
    report      the paper's Tables 1-4 as Markdown from `dvc exp show --json`
"""

__version__ = "0.1.0"

"""Vision-to-Sensor Knowledge Distillation (VSKD) for human activity recognition.

Ni et al., "Cross-modal knowledge distillation for vision-to-sensor action recognition",
ICASSP 2022. A multi-scale TRN video teacher (BN-Inception) distils into a ResNet18 student
that sees only a Gramian Angular Field image of a wrist accelerometer.

Modules, one concept each:
    params           params.yaml loading and validation
    choices          the allowed values of every params.yaml choice (no project imports)
    index            the sample index every dataset adapter produces, and the splits
    datasets         dataset adapters: synthetic (generator), utd_mhad, berkeley_mhad, mmact,
                     skeleton_video (UTD-MHAD's Kinect skeleton drawn as video), resample
    download         resumable, verified downloads and archive extraction
    frames           video decoding and writing (PyAV), TSN segment sampling, clip augmentation
    clip_affine      one random rotation and stretch per training clip (teacher.affine)
    gaf              Gramian Angular Field encoding and the GAF store
    augment          accelerometer augmentation, encoded to GAF at load time
    mixup            mixup of the student's training batches (student.mixup)
    h5store          atomic HDF5 writers/readers keyed by sample id
    badsamples       what a stage does with an unusable recording (stop or skip, counted)
    models           BN-Inception, multi-scale TRN teacher, GAF student
    attention        attention maps for attention transfer, both sides
    losses           KD, RKD distance and angle, semantic, AT, SP and their weighted sums
    teacher_outputs  the stored teacher outputs, and the dataset pairing them with GAF images
    loop             the training loop shared by the teacher, student and distill stages
    loaders          data loaders ordered by (seed, epoch); a model run over a loader
    runtime          device, torchrun process group (DDP), synchronised BatchNorm, seeding
    amp              mixed precision of the training steps (runtime.amp)
    resume           the resume file of an interrupted training stage (runtime.resume)
    checkpoints      where models are written and read back, one per training seed
    live             the per-epoch curves (dvclive)
    progress         progress bars
    train_teacher    the teacher stage's training and stored outputs
    train_student    the student and distill stages' training
    evaluate         metrics (per seed, mean and std, paired tests), confusion matrices
    stats            exact McNemar test, paired bootstrap interval, mean and std over seeds
    minirocket       the MiniRocket reference (aeon) on the raw accelerometer
    devprotocol      the leave-one-subject-out development protocol (python -m vskd dev)
    selection        a setting chosen among dev runs, scored leave-one-fold-out (python -m vskd choose)
    export           the shipped student as ONNX (and int8), verified
    cost             MAC and parameter counts of teacher and student
    predict          python -m vskd predict: classify a recording with the shipped student
    report           the paper's Tables 1-4 as Markdown from `dvc exp show --json`
    preset           the paper's tables at its scale: presets/*.yaml -> dvc exp run (python -m vskd preset)
    stage            what every stage script shares (argv, params, errors, torchrun)
    paths            where every stage reads and writes, per dataset
"""

__version__ = "0.1.0"
